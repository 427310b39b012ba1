-- Third-party apps and the users who authorized them. An app acts on behalf
-- of one user, limited to the scopes that user granted; re-authorizing
-- replaces the scopes. Only the owner (`gateway apps …`) touches these
-- tables: no pool role is granted anything on them.

CREATE TABLE apps (
    app_id     text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE app_authorizations (
    app_id        text COLLATE "C" REFERENCES apps,
    user_id       text COLLATE "C",
    scopes        text[] NOT NULL,
    authorized_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, user_id)
);
