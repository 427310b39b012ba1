/* GraphiQL for the gateway: the IDE with the explorer plugin, talking to /graphql on this origin.
 *
 * A bearer token typed in the bar above GraphiQL is kept in this tab's sessionStorage (never a
 * cookie) and sent as `Authorization: Bearer <token>` on every request GraphiQL makes, the schema's
 * introspection included; without one no Authorization header is sent and the gateway answers as
 * it answers anyone. Changing the token gives GraphiQL a new fetcher, and so a new introspection.
 * The gateway's policy decides every field, introspection too: whatever it refuses, GraphiQL shows.
 *
 * Loaded after react, react-dom, graphiql and @graphiql/plugin-explorer (window.React, ReactDOM,
 * GraphiQL, GraphiQLPluginExplorer), from this server only: the page's CSP forbids anything else. */
(function () {
  "use strict";

  var ENDPOINT = "/graphql";
  var TOKEN_KEY = "gateway.graphiql.token";
  var ACCEPT = "application/graphql-response+json, application/json";

  var DEFAULT_QUERY = [
    "# The gateway's policy decides each field for",
    "# whoever the token above names (none: anonymous).",
    "# Run: Ctrl-Enter. Complete: Ctrl-Space.",
    "# A video's public counts:",
    "",
    "{",
    '  video(id: "v1") {',
    "    id",
    "    creatorId",
    "    publishedAt",
    "    stats {",
    "      views",
    "      likes",
    "      comments",
    "      shares",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");

  // --- the token, in this tab's sessionStorage ----------------------------------------------

  function readToken() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      return "";
    }
  }

  function writeToken(token) {
    try {
      if (token) {
        window.sessionStorage.setItem(TOKEN_KEY, token);
      } else {
        window.sessionStorage.removeItem(TOKEN_KEY);
      }
    } catch (e) {
      /* storage off: the token lasts until the page is left */
    }
  }

  /** A pasted value as a token: trimmed, a leading "Bearer " dropped; null when it cannot be a header value. */
  function normalizeToken(value) {
    var token = String(value || "").trim().replace(/^bearer\s+/i, "");
    if (token && !/^[\x21-\x7e]+$/.test(token)) {
      return null; // spaces, control or non-ASCII characters: not a bearer token
    }
    return token;
  }

  /** What an (unverified) JWT says about itself, for the status line only; the gateway verifies it. */
  function describeToken(token) {
    try {
      var part = token.split(".")[1];
      var json = atob(part.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((part.length + 3) % 4));
      var claims = JSON.parse(json);
      var who = [claims.kind, claims.sub].filter(Boolean).join(" ");
      if (claims.app) {
        who += " via app " + claims.app;
      }
      var text = who ? "token for " + who : "token set";
      if (typeof claims.exp === "number") {
        var expires = new Date(claims.exp * 1000);
        text += (expires.getTime() <= Date.now() ? ", expired " : ", expires ") + expires.toLocaleString();
      }
      return text;
    } catch (e) {
      return "token set";
    }
  }

  // --- the fetcher ---------------------------------------------------------------------------

  /** A GraphiQL fetcher that POSTs JSON to /graphql, with `token` (if any) as a bearer token. */
  function makeFetcher(token) {
    return function fetcher(graphQLParams, opts) {
      var headers = { "content-type": "application/json", accept: ACCEPT };
      // Headers typed in GraphiQL's own headers editor apply too, but never a second Authorization
      // while the bar has a token.
      var extra = (opts && opts.headers) || {};
      Object.keys(extra).forEach(function (name) {
        var value = extra[name];
        var key = name.toLowerCase();
        if ((typeof value === "string" || typeof value === "number") && !(token && key === "authorization")) {
          headers[key] = String(value);
        }
      });
      if (token) {
        headers.authorization = "Bearer " + token;
      }
      return window
        .fetch(ENDPOINT, {
          method: "POST",
          credentials: "omit",
          headers: headers,
          body: JSON.stringify(graphQLParams),
        })
        .then(function (response) {
          return response.text().then(function (text) {
            try {
              return JSON.parse(text);
            } catch (e) {
              // Not a GraphQL response (a proxy's error page, say): show what came back.
              return {
                errors: [
                  {
                    message:
                      "HTTP " + response.status + " " + response.statusText + ": the response is not JSON" +
                      (text ? ": " + text.slice(0, 500) : ""),
                  },
                ],
              };
            }
          });
        });
    };
  }

  // --- GraphiQL ------------------------------------------------------------------------------

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  var explorer = GraphiQLPluginExplorer.explorerPlugin();

  function render(token) {
    root.render(
      React.createElement(GraphiQL, {
        // A new fetcher (one per token) makes GraphiQL introspect again, under the new token.
        fetcher: makeFetcher(token),
        defaultQuery: DEFAULT_QUERY,
        plugins: [explorer],
        defaultEditorToolsVisibility: true,
        inputValueDeprecation: true,
        isHeadersEditorEnabled: true,
        shouldPersistHeaders: false,
      })
    );
  }

  // --- the token bar -------------------------------------------------------------------------

  var form = document.getElementById("token-bar");
  var input = document.getElementById("token-input");
  var clear = document.getElementById("token-clear");
  var status = document.getElementById("token-status");

  function showStatus(token, error) {
    status.className = "token-status" + (error ? " is-error" : token ? " is-set" : "");
    status.textContent = error || (token ? describeToken(token) + " — sent as Authorization: Bearer" : "no token: requests are anonymous");
  }

  var current = readToken();

  function use(token) {
    var changed = token !== current;
    current = token;
    writeToken(token);
    input.value = token;
    showStatus(token);
    if (changed) {
      render(token);
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault(); // never submitted anywhere (the CSP's form-action is 'none' too)
    var token = normalizeToken(input.value);
    if (token === null) {
      showStatus(current, "that is not a bearer token (spaces or non-ASCII characters); nothing changed");
      return;
    }
    use(token);
  });

  clear.addEventListener("click", function () {
    use("");
    input.focus();
  });

  input.value = current;
  showStatus(current);
  render(current);
})();
