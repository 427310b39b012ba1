package gateway.authz_test

import rego.v1

import data.gateway.authz

# Written for rego-cpp 1.5.2 (regopy) as well as OPA:
# - inputs are mocked key by key (`with input.principal as …`): `with input as {…}` can crash it;
# - what `with` substitutes is a local variable: a rule named there is ignored;
# - `with` is used in helper functions, not inside an `every` body, where it misbehaves;
#   nor are comprehensions or sort() results compared there: they compare unequal;
# - tables are walked with one `every`: an `every` nested in another answers undefined.

anonymous := {"kind": "anonymous", "id": null, "scopes": []}

user := {"kind": "user", "id": "u1", "scopes": []}

compliance := {"kind": "compliance", "id": "c1", "scopes": []}

service := {"kind": "service", "id": "ingest", "scopes": []}

app(scopes) := {"kind": "app", "id": "app1", "scopes": scopes}

# A field of the policy input as the guard builds it; the path is the coordinate.
field(coordinate) := {
	"path": coordinate,
	"coordinate": coordinate,
	"type": type_name,
	"field": field_name,
	"alias": null,
	"arguments": {},
} if {
	[type_name, field_name] := split(coordinate, ".")
}

timeline(coordinate, granularity) := object.union(field(coordinate), {"arguments": {"granularity": granularity, "from": null, "to": null}})

# The verdict for one field asked alone.
verdict(principal, requested) := answer if {
	fields := [requested]
	answer := authz.decision.fields[requested.path] with input.principal as principal with input.fields as fields
}

expect_allowed(principal, coordinate) := {"allow": true, "owner_only": false, "reason": concat(" ", [coordinate, "is allowed for", principal.kind])}

expect_owner_only(principal, coordinate) := {
	"allow": true,
	"owner_only": true,
	"reason": concat(" ", [coordinate, "is allowed for", principal.kind, "on their own data only"]),
}

expect_denied(reason) := {"allow": false, "owner_only": false, "reason": reason}

public_coordinates := [
	"Query.video", "Video.id", "Video.creatorId", "Video.publishedAt", "Video.stats",
	"VideoStats.views", "VideoStats.likes", "VideoStats.comments", "VideoStats.shares",
	"Query.creator", "Creator.id", "Creator.totals", "Creator.videos", "CreatorTotals.followers",
	"VideoConnection.edges", "VideoEdge.node",
]

# The fields that describe one creator's audience: only the creator (or an app acting
# for them) may read them, and only on their own videos.
insight_coordinates := [
	"Video.shareTimeline", "Video.viewTimeline", "Video.shareChannels", "Video.audience",
	"VideoStats.likeRatio", "VideoStats.engagementRate", "VideoStats.averageWatchSeconds",
	"VideoStats.completionRate", "Creator.followerGrowth",
]

own_activity_coordinates := ["Query.me", "Me.id", "Me.likes", "MyLike.videoId", "Me.follows", "MyFollow.creatorId"]

# A user's own shares: theirs to read, never an app's (an app gathering `activity` from many users
# would otherwise learn who shares each creator's videos, anonymous shares included).
own_share_coordinates := ["Me.shares", "MyShare.videoId", "MyShare.channel", "MyShare.sharedAt"]

# A user's consent settings and the mutations that change them: the user's own, never an app's.
own_settings_coordinates := [
	"Me.settings", "ConsentSettings.anonymousShares", "ConsentSettings.visibleTo", "CreatorVisibility.creatorId",
	"CreatorVisibility.since", "Mutation.setShareSettings", "Mutation.setVisibleTo",
]

decision_log_coordinates := ["Query.decisionLog", "DecisionLogConnection.edges", "PolicyDecisionEdge.node", "PolicyDecision.input", "PolicyDecision.denied"]

erasure_coordinates := ["Mutation.eraseUser", "ErasureReceipt.erasureId", "ErasureReceipt.erasedAt", "ErasureReceipt.repeated"]

test_fields_public_counts_allowed_for_every_reader if {
	readers := [anonymous, user, app(["stats"]), app(["insights"])]
	cases := [[principal, coordinate] | some principal in readers; some coordinate in public_coordinates]
	every case in cases {
		verdict(case[0], field(case[1])) == expect_allowed(case[0], case[1])
	}
}

test_fields_public_counts_denied_to_compliance_and_service if {
	cases := [[principal, coordinate] | some principal in [compliance, service]; some coordinate in public_coordinates]
	every case in cases {
		verdict(case[0], field(case[1])) == expect_denied(concat(" ", [case[1], "is not allowed for", case[0].kind]))
	}
}

test_fields_insights_owner_only_for_users_and_insight_apps if {
	cases := [[principal, coordinate] | some principal in [user, app(["insights"])]; some coordinate in insight_coordinates]
	every case in cases {
		verdict(case[0], field(case[1])) == expect_owner_only(case[0], case[1])
	}
}

test_fields_insights_denied_to_everyone_else if {
	cases := [[principal, coordinate] | some principal in [anonymous, compliance, service]; some coordinate in insight_coordinates]
	every case in cases {
		verdict(case[0], field(case[1])) == expect_denied(concat(" ", [case[1], "is not allowed for", case[0].kind]))
	}
}

test_fields_insights_need_the_insights_scope if {
	every coordinate in insight_coordinates {
		verdict(app(["stats", "activity"]), field(coordinate)) == expect_denied(concat(" ", [coordinate, "needs one of the app scopes: insights"]))
	}
}

test_fields_shared_timeline_denied_for_anonymous if {
	verdict(anonymous, field("Video.shareTimeline")) == expect_denied("Video.shareTimeline is not allowed for anonymous")
}

test_fields_own_activity_for_users_and_activity_apps if {
	cases := [[principal, coordinate] | some principal in [user, app(["activity"])]; some coordinate in own_activity_coordinates]
	every case in cases {
		verdict(case[0], field(case[1])) == expect_allowed(case[0], case[1])
	}
}

test_fields_own_shares_for_users_only if {
	every coordinate in own_share_coordinates {
		verdict(user, field(coordinate)) == expect_allowed(user, coordinate)
	}
	readers := [anonymous, compliance, service, app(["stats", "insights", "activity"])]
	cases := [[principal, coordinate] | some principal in readers; some coordinate in own_share_coordinates]
	every case in cases {
		verdict(case[0], field(case[1])).allow == false
	}
}

test_fields_own_activity_denied_to_everyone_else if {
	readers := [anonymous, compliance, service, app(["stats", "insights"])]
	cases := [[principal, coordinate] | some principal in readers; some coordinate in own_activity_coordinates]
	every case in cases {
		verdict(case[0], field(case[1])).allow == false
	}
}

test_fields_own_settings_for_users_only if {
	every coordinate in own_settings_coordinates {
		verdict(user, field(coordinate)) == expect_allowed(user, coordinate)
	}
	others := [anonymous, compliance, service, app(["stats", "insights", "activity"])]
	cases := [[principal, coordinate] | some principal in others; some coordinate in own_settings_coordinates]
	every case in cases {
		verdict(case[0], field(case[1])) == expect_denied(concat(" ", [case[1], "is not allowed for", case[0].kind]))
	}
}

test_fields_consented_sharers_denied_to_every_kind_as_shipped if {
	readers := [anonymous, user, compliance, service, app(["stats", "insights", "activity"])]
	every principal in readers {
		verdict(principal, field("Video.consentedSharers")) == expect_denied(concat(" ", ["Video.consentedSharers is not allowed for", principal.kind]))
	}
}

# The verdict on Video.consentedSharers for a user, with data.json granting users `groups`.
consented_sharers_verdict(groups) := answer if {
	principal := user
	fields := [field("Video.consentedSharers")]
	answer := authz.decision.fields["Video.consentedSharers"] with input.principal as principal
		with input.fields as fields
		with data.access.principals.user.groups as groups
}

test_fields_consented_sharers_owner_only_once_granted_to_users if {
	groups := array.concat(data.access.principals.user.groups, ["consented_sharers"])
	consented_sharers_verdict(groups) == expect_owner_only(user, "Video.consentedSharers")
}

test_fields_decision_log_for_compliance_only if {
	every coordinate in decision_log_coordinates {
		verdict(compliance, field(coordinate)) == expect_allowed(compliance, coordinate)
	}
	readers := [anonymous, user, service, app(["stats", "insights", "activity"])]
	cases := [[principal, coordinate] | some principal in readers; some coordinate in decision_log_coordinates]
	every case in cases {
		verdict(case[0], field(case[1])).allow == false
	}
}

test_fields_erasure_for_compliance_only if {
	every coordinate in erasure_coordinates {
		verdict(compliance, field(coordinate)) == expect_allowed(compliance, coordinate)
	}
	readers := [anonymous, user, service, app(["stats", "insights", "activity"])]
	cases := [[principal, coordinate] | some principal in readers; some coordinate in erasure_coordinates]
	every case in cases {
		verdict(case[0], field(case[1])).allow == false
	}
}

test_fields_unlisted_coordinate_denied_for_every_kind if {
	readers := [anonymous, user, compliance, service, app(["stats", "insights", "activity"])]
	every principal in readers {
		verdict(principal, field("Video.sharerIds")) == expect_denied(concat(" ", ["Video.sharerIds is not allowed for", principal.kind]))
	}
}

test_fields_unknown_kind_denied if {
	verdict({"kind": "robot", "id": "r1", "scopes": []}, field("Video.id")) == expect_denied("Video.id is not allowed for robot (a principal kind this policy does not know)")
}

test_fields_app_without_scopes_gets_nothing if {
	verdict(app([]), field("Video.id")) == expect_denied("Video.id needs one of the app scopes: insights, stats")
}

test_fields_unknown_scope_grants_nothing if {
	verdict(app(["everything"]), field("Video.id")).allow == false
}

test_fields_introspection_per_kind if {
	cases := [
		{"principal": anonymous, "coordinate": "Query.__schema", "allow": true},
		{"principal": anonymous, "coordinate": "Query.__type", "allow": true},
		{"principal": anonymous, "coordinate": "__Type.name", "allow": true},
		{"principal": anonymous, "coordinate": "Video.__typename", "allow": true},
		{"principal": user, "coordinate": "Query.__schema", "allow": true},
		{"principal": user, "coordinate": "__Type.fields", "allow": true},
		{"principal": user, "coordinate": "__Field.__typename", "allow": true},
		{"principal": app(["stats"]), "coordinate": "__Schema.types", "allow": true},
		{"principal": compliance, "coordinate": "Query.__type", "allow": true},
		{"principal": service, "coordinate": "Query.__schema", "allow": false},
		{"principal": service, "coordinate": "Query.__typename", "allow": false},
	]
	every case in cases {
		verdict(case.principal, field(case.coordinate)).allow == case.allow
	}
}

test_fields_introspection_denial_says_so if {
	verdict(service, field("Query.__schema")) == expect_denied("Query.__schema is introspection, which is not allowed for service")
}

test_fields_introspection_is_never_owner_only if {
	verdict(user, field("__Type.name")) == expect_allowed(user, "__Type.name")
}

timeline_refusals(principal, granularity) := object.get(deny, "Video.shareTimeline", set()) if {
	requested := [timeline("Video.shareTimeline", granularity)]
	deny := authz.deny with input.principal as principal with input.fields as requested
}

test_deny_granularity_below_the_floor if {
	cases := [
		{"principal": user, "granularity": "HOUR", "reasons": set()},
		{"principal": user, "granularity": "DAY", "reasons": set()},
		{"principal": app(["insights"]), "granularity": "DAY", "reasons": set()},
		{"principal": app(["insights"]), "granularity": "MONTH", "reasons": set()},
		{"principal": app(["insights"]), "granularity": "HOUR", "reasons": {"Video.shareTimeline(granularity: HOUR) is finer than the DAY floor for app"}},
		{"principal": user, "granularity": "MINUTE", "reasons": {"Video.shareTimeline asks for a granularity this policy does not know"}},
	]
	every case in cases {
		timeline_refusals(case.principal, case.granularity) == case.reasons
	}
}

test_deny_collects_every_reason if {
	requested := timeline("Video.viewTimeline", "HOUR")
	verdict(app(["stats"]), requested) == expect_denied(concat("; ", [
		"Video.viewTimeline needs one of the app scopes: insights",
		"Video.viewTimeline(granularity: HOUR) is finer than the DAY floor for app",
	]))
}

test_decision_answers_every_path if {
	requested := [
		field("Query.video"),
		object.union(field("Video.id"), {"path": "video.id"}),
		object.union(field("Video.id"), {"path": "video.alias", "alias": "alias"}),
		object.union(field("Video.shareTimeline"), {"path": "video.shareTimeline"}),
		object.union(field("TimeBucket.count"), {"path": "video.shareTimeline.buckets.count"}),
	]
	principal := anonymous
	fields := authz.decision.fields with input.principal as principal with input.fields as requested
	{path | some path; fields[path]} == {entry.path | some entry in requested}
	fields["video.alias"].allow == true
	fields["video.shareTimeline"].allow == false
	fields["video.shareTimeline.buckets.count"].allow == false
}

test_decision_with_no_fields_is_empty if {
	principal := user
	decision := authz.decision with input.principal as principal with input.fields as []
	decision.fields == {}
	decision.obligations.k_threshold == 5
}

test_decision_carries_the_principals_obligations if {
	principal := app(["insights"])
	requested := [field("Video.id")]
	decision := authz.decision with input.principal as principal with input.fields as requested
	decision.obligations.k_threshold == 50
	decision.obligations.granularity_floor == "DAY"
}

test_granted_app_groups_come_from_scopes if {
	principal := app(["stats", "activity"])
	groups := authz.granted with input.principal as principal
	groups == {"public_counts": true, "own_activity": true}
}

test_granted_ignores_scopes_of_other_kinds if {
	principal := {"kind": "anonymous", "id": null, "scopes": ["insights"]}
	groups := authz.granted with input.principal as principal
	groups == {"public_counts": true}
}
