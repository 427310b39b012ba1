# METADATA
# title: Field authorization
# description: |
#   Decides every GraphQL field a request selects, before any resolver runs.
#   Default deny: a coordinate (`Type.field`) that data.access does not grant to
#   the principal is refused, so a field added to the schema stays invisible
#   until compliance lists it in policies/data.json.
#
#   input (built by the gateway's policy guard, one per request):
#     principal:  {kind: "anonymous"|"user"|"app"|"compliance"|"service", id: string|null, scopes: [string],
#                  app: string (apps only: the app acting for user `id`)}
#     operation:  {name: string|null, type: "query"|"mutation"|"subscription", hash: string}
#     fields:     [{path, coordinate, type, field, alias, arguments}]
#                 `path` is the response path, unique within a request; `arguments`
#                 holds every argument, defaults and variables filled in, with its value
#                 if data.access.arguments lists it and "(withheld)" if not (every value
#                 when it lists none; policies/README.md, "Arguments").
#
#   Nothing here reads input.principal.id, input.principal.app or input.operation, and
#   the only argument read is granularity: a field's verdict depends on the principal's
#   kind and scopes and on the fields asked for, which is what the gateway's decision
#   cache keys on (gateway.obligations reads input.principal.app as well, so the cache
#   keys on the app too; never on the user, nor on which video is asked about).
package gateway.authz

import rego.v1

import data.gateway.obligations

# METADATA
# description: |
#   The entrypoint, data.gateway.authz.decision: a verdict for every path in
#   input.fields, and the obligations the allowed fields are answered under.
decision := {
	"fields": fields,
	"obligations": obligations.obligations,
}

# METADATA
# description: |
#   {allow, reason, owner_only} for each of input.fields, keyed by its path.
#   owner_only: allowed only on data the principal owns, which the resolver checks.
fields[requested.path] := field_verdict(requested) if {
	some requested in input.fields
}

# A field's verdict from the field alone (its coordinate and arguments) and the principal: no
# rule here looks another field up by its path, so a decision costs time linear in the fields
# asked for (an engine evaluates a rule keyed by path anew at each lookup).
field_verdict(requested) := {"allow": false, "reason": concat("; ", sort(reasons)), "owner_only": false} if {
	reasons := field_denials(requested)
	count(reasons) > 0
} else := field_grant(requested)

# METADATA
# description: |
#   Every reason a field of input.fields is refused, keyed by its path; a field with
#   any reason is denied. Reads each field's coordinate and arguments.granularity,
#   and input.principal's kind and scopes.
deny[requested.path] := reasons if {
	some requested in input.fields
	reasons := field_denials(requested)
	count(reasons) > 0
}

field_denials(requested) := {reason |
	not field_grant(requested)
	reason := refusal(requested)
} | {reason |
	granularity := requested.arguments.granularity
	reason := granularity_refusal(requested.coordinate, granularity)
}

# METADATA
# description: |
#   How each field of input.fields is granted, keyed by its path; undefined for a
#   field nothing grants (default deny). A coordinate is granted when one of its
#   groups in data.access.fields is granted to the principal; it is owner-only when
#   any of its groups is owner-only for the principal's kind.
access[requested.path] := field_grant(requested) if {
	some requested in input.fields
}

field_grant(requested) := allowance(requested.coordinate, groups) if {
	not startswith(requested.field, "__")
	not startswith(requested.type, "__")
	groups := data.access.fields[requested.coordinate]
	some group in groups
	granted[group]
} else := allowed(requested.coordinate) if {
	principal_access.introspection[introspection_class(requested)] == true
}

allowance(coordinate, groups) := owner_only(coordinate) if {
	some group in groups
	owner_only_groups[group]
} else := allowed(coordinate)

# METADATA
# description: |
#   The verdict for a granted coordinate, naming input.principal.kind. Reasons are built
#   with concat, not sprintf: rego-cpp 1.5.2's sprintf can keep a string's JSON quotes.
allowed(coordinate) := {"allow": true, "reason": concat(" ", [coordinate, "is allowed for", input.principal.kind]), "owner_only": false}

# METADATA
# description: The verdict for a coordinate granted on the owner's data only, naming input.principal.kind.
owner_only(coordinate) := {
	"allow": true,
	"reason": concat(" ", [coordinate, "is allowed for", input.principal.kind, "on their own data only"]),
	"owner_only": true,
}

# METADATA
# description: The entry of data.access.principals for input.principal.kind; undefined for an unknown kind.
principal_access := data.access.principals[input.principal.kind]

# METADATA
# description: |
#   The field groups granted to the principal, as {group: true}: an app's come from
#   the scopes in input.principal.scopes, every other kind's are listed directly.
granted := {group: true | some group in principal_access.groups} if {
	input.principal.kind != "app"
}

granted := {group: true |
	some scope in input.principal.scopes
	some group in principal_access.scopes[scope]
} if {
	input.principal.kind == "app"
}

owner_only_groups := {group: true | some group in object.get(principal_access, "owner_only_groups", [])}

# Introspection is decided per principal kind: `typename` covers __typename;
# `schema` covers __schema, __type and every field of an introspection type
# (__Type.name, __Field.args, …).
introspection_class(requested) := "typename" if requested.field == "__typename"

introspection_class(requested) := "schema" if {
	startswith(requested.field, "__")
	requested.field != "__typename"
}

introspection_class(requested) := "schema" if {
	startswith(requested.type, "__")
	requested.field != "__typename"
}

# METADATA
# description: Why a field of input.fields is not granted to input.principal (kind, scopes).
refusal(requested) := concat(" ", [requested.coordinate, "is not allowed for", input.principal.kind, "(a principal kind this policy does not know)"]) if {
	not principal_access
} else := concat(" ", [requested.coordinate, "is introspection, which is not allowed for", input.principal.kind]) if {
	introspection_class(requested)
} else := concat(" ", [requested.coordinate, "needs one of the app scopes:", scopes]) if {
	input.principal.kind == "app"
	granting := scopes_granting(requested.coordinate)
	count(granting) > 0
	scopes := concat(", ", sort(granting))
} else := concat(" ", [requested.coordinate, "is not allowed for", input.principal.kind])

scopes_granting(coordinate) := {scope |
	some scope
	some group in data.access.principals.app.scopes[scope]
	group in data.access.fields[coordinate]
}

# Finest first: a timeline finer than the principal's granularity floor is refused.
granularity_rank := {"HOUR": 0, "DAY": 1, "WEEK": 2, "MONTH": 3}

# METADATA
# description: Why a granularity argument is refused, given input.principal.kind's floor; undefined when it is not.
granularity_refusal(coordinate, granularity) := concat(" ", [coordinate, "asks for a granularity this policy does not know"]) if {
	object.get(granularity_rank, granularity, null) == null
} else := concat("", [coordinate, "(granularity: ", granularity, ") is finer than the ", floor, " floor for ", input.principal.kind]) if {
	floor := obligations.granularity_floor
	granularity_rank[granularity] < granularity_rank[floor]
}
