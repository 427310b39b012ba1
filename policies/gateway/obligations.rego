# METADATA
# title: Obligations
# description: |
#   How the fields authz allows must be answered, per principal kind (and, for rate
#   limits, per app scope; for registered documents, per app). The figures live in
#   data.obligations: `defaults`, the strictest terms, apply to any kind that does not
#   override them (including a kind the policy does not know); `apps`, keyed by app id,
#   may set registered_documents_only for one app (and nothing else).
#
#   input (see gateway.authz): reads input.principal.kind and input.principal.scopes, and
#   input.principal.app (registered_documents_only); never input.principal.id, so a
#   decision is the same for every user of an app.
#
#   The answer, under decision.obligations:
#     k_threshold            the principal sees only releases at which the count of people crossed
#                            a multiple of it, and breakdown cells of fewer people are suppressed;
#                            the smallest of all kinds' is the release history's own step
#     granularity_floor      the finest timeline bucket served (HOUR, DAY, WEEK, MONTH); the
#                            principal sees releases made before the end of the newest closed one
#     bucket_delay_seconds   ... closed at least this long ago
#     epsilon                {quantity: ε} of the noise on what the public cannot read exactly:
#                            "shares" (share channels), "viewers" (the audience by region and
#                            age band), "completed_views"; {} means exact counts. Totals and
#                            timelines are values of the history the public reads: never noised.
#     epsilon_budget_per_day ε one (app, user) may spend a day; null means no budget
#     rate_limit             {requests_per_minute}
#     registered_documents_only
#                            true: the principal may run only the GraphQL documents registered
#                            for its app (`gateway apps documents add`); anything else is refused
#                            with FORBIDDEN naming obligations.registered_documents_only
#     share_surge_factor     a release is a share surge when its shares per hour exceed the video's
#                            running median by more than this factor (> 1)
package gateway.obligations

import rego.v1

# METADATA
# description: Everything below, as one object (decision.obligations).
obligations := {
	"k_threshold": k_threshold,
	"granularity_floor": granularity_floor,
	"bucket_delay_seconds": bucket_delay_seconds,
	"epsilon": epsilon,
	"epsilon_budget_per_day": epsilon_budget_per_day,
	"rate_limit": rate_limit,
	"registered_documents_only": registered_documents_only,
	"share_surge_factor": share_surge_factor,
}

# METADATA
# description: The overrides data.obligations lists for input.principal.kind; {} for other kinds.
principal_terms := object.get(data.obligations.principals, input.principal.kind, {})

term(name) := object.get(principal_terms, name, data.obligations.defaults[name])

k_threshold := term("k_threshold")

granularity_floor := term("granularity_floor")

bucket_delay_seconds := term("bucket_delay_seconds")

epsilon := term("epsilon")

epsilon_budget_per_day := term("epsilon_budget_per_day")

share_surge_factor := term("share_surge_factor")

# METADATA
# description: The tightest of the limits that apply to the principal (requests_per_minute).
rate_limit := {"requests_per_minute": min(requests_per_minute)}

# METADATA
# description: |
#   The limits that apply: the kind's, and those of the scopes in input.principal.scopes
#   that set their own (rate_limit_by_scope).
requests_per_minute contains limit if {
	limit := term("rate_limit").requests_per_minute
}

requests_per_minute contains limit if {
	some scope in object.get(input.principal, "scopes", [])
	limit := principal_terms.rate_limit_by_scope[scope].requests_per_minute
}

# METADATA
# description: |
#   The overrides data.obligations.apps lists for the app in input.principal.app; {} for a
#   principal that is not an app, or an app without any.
app_terms := terms if {
	input.principal.kind == "app"
	terms := object.get(object.get(data.obligations, "apps", {}), input.principal.app, {})
} else := {}

# METADATA
# description: |
#   Whether the principal may run only its app's registered documents: the app's own setting
#   (data.obligations.apps[id]) if it has one, else its kind's, else the default.
registered_documents_only := object.get(app_terms, "registered_documents_only", term("registered_documents_only"))
