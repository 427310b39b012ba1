package gateway.obligations_test

import rego.v1

import data.gateway.obligations

# Written for rego-cpp 1.5.2 as well as OPA; see authz_test.rego for what that rules out.

app(scopes) := {"kind": "app", "id": "app1", "scopes": scopes}

kind(name) := {"kind": name, "id": "p1", "scopes": []}

# An app as the gateway names it: acting for user u1, with its own id.
named_app(app_id) := {"kind": "app", "id": "u1", "scopes": ["stats"], "app": app_id}

# The obligations for one principal.
terms(principal) := answer if {
	answer := obligations.obligations with input.principal as principal
}

# The obligations for one principal, with data.obligations.apps as given.
terms_with_apps(principal, apps) := answer if {
	answer := obligations.obligations with input.principal as principal with data.obligations.apps as apps
}

test_k_threshold_per_kind if {
	cases := [
		{"principal": kind("user"), "k": 5},
		{"principal": app(["insights"]), "k": 50},
		{"principal": kind("anonymous"), "k": 5},
		{"principal": kind("compliance"), "k": 50},
		{"principal": kind("robot"), "k": 50},
	]
	every case in cases {
		terms(case.principal).k_threshold == case.k
	}
}

test_granularity_floor_per_kind if {
	cases := [
		{"principal": kind("user"), "floor": "HOUR"},
		{"principal": app(["insights"]), "floor": "DAY"},
		{"principal": kind("anonymous"), "floor": "DAY"},
		{"principal": kind("robot"), "floor": "DAY"},
	]
	every case in cases {
		terms(case.principal).granularity_floor == case.floor
	}
}

test_bucket_delay_seconds_is_an_hour_for_everyone if {
	every principal in [kind("user"), app(["insights"]), kind("anonymous"), kind("robot")] {
		terms(principal).bucket_delay_seconds == 3600
	}
}

test_epsilon_noises_what_the_public_cannot_read_exactly if {
	epsilon := terms(app(["stats"])).epsilon
	every quantity in ["shares", "viewers", "completed_views"] {
		epsilon[quantity] > 0
	}
}

test_epsilon_leaves_public_counts_exact if {
	epsilon := terms(app(["insights"])).epsilon
	every metric in ["views", "likes", "comments", "followers"] {
		not epsilon[metric]
	}
}

test_epsilon_empty_means_exact_counts_for_others if {
	every principal in [kind("user"), kind("anonymous"), kind("compliance")] {
		terms(principal).epsilon == {}
	}
}

test_epsilon_budget_per_day_only_for_apps if {
	terms(app(["stats"])).epsilon_budget_per_day == 10
	terms(kind("user")).epsilon_budget_per_day == null
}

test_share_surge_factor_is_three_for_everyone if {
	every principal in [kind("anonymous"), kind("user"), app(["insights"]), kind("compliance"), kind("robot")] {
		terms(principal).share_surge_factor == 3
	}
}

test_rate_limit_per_kind if {
	cases := [
		{"principal": kind("anonymous"), "limit": 120},
		{"principal": kind("user"), "limit": 600},
		{"principal": app(["stats"]), "limit": 300},
		{"principal": kind("robot"), "limit": 60},
	]
	every case in cases {
		terms(case.principal).rate_limit == {"requests_per_minute": case.limit}
	}
}

test_rate_limit_tightened_by_scope if {
	terms(app(["stats", "insights"])).rate_limit == {"requests_per_minute": 120}
}

test_rate_limit_ignores_unknown_scopes if {
	terms(app(["stats", "everything"])).rate_limit == {"requests_per_minute": 300}
}

test_obligations_name_every_term if {
	every principal in [kind("anonymous"), kind("user"), app([]), kind("compliance"), kind("service"), kind("robot")] {
		object.keys(terms(principal)) == {
			"k_threshold", "granularity_floor", "bucket_delay_seconds",
			"epsilon", "epsilon_budget_per_day", "rate_limit", "registered_documents_only",
			"share_surge_factor",
		}
	}
}

test_registered_documents_only_is_off_by_default if {
	every principal in [kind("anonymous"), kind("user"), app(["stats"]), named_app("app_a"), kind("compliance"), kind("robot")] {
		terms(principal).registered_documents_only == false
	}
}

test_registered_documents_only_switched_on_for_one_app_by_its_id if {
	apps := {"app_listed": {"registered_documents_only": true}}
	terms_with_apps(named_app("app_listed"), apps).registered_documents_only == true
	terms_with_apps(named_app("app_other"), apps).registered_documents_only == false
	terms_with_apps(app(["stats"]), apps).registered_documents_only == false
}

test_registered_documents_only_applies_to_apps_only if {
	apps := {"app_listed": {"registered_documents_only": true}}
	user := {"kind": "user", "id": "u1", "scopes": [], "app": "app_listed"}
	terms_with_apps(user, apps).registered_documents_only == false
}

test_registered_documents_only_an_app_may_be_exempted_from_its_kinds_setting if {
	apps := {"app_exempt": {"registered_documents_only": false}}
	kinds := {"app": {"registered_documents_only": true}}
	exempt := obligations.obligations with input.principal as named_app("app_exempt") with data.obligations.apps as apps with data.obligations.principals as kinds
	other := obligations.obligations with input.principal as named_app("app_other") with data.obligations.apps as apps with data.obligations.principals as kinds
	exempt.registered_documents_only == false
	other.registered_documents_only == true
}

test_registered_documents_only_an_apps_entry_sets_nothing_else if {
	apps := {"app_listed": {"registered_documents_only": true, "k_threshold": 0, "epsilon": {}}}
	answer := terms_with_apps(named_app("app_listed"), apps)
	answer.k_threshold == 50
	answer.epsilon.shares == 0.25
}
