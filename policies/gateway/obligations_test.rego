package gateway.obligations_test

import rego.v1

import data.gateway.obligations

# Written for rego-cpp 1.5.2 as well as OPA; see authz_test.rego for what that rules out.

app(scopes) := {"kind": "app", "id": "app1", "scopes": scopes}

kind(name) := {"kind": name, "id": "p1", "scopes": []}

# The obligations for one principal.
terms(principal) := answer if {
	answer := obligations.obligations with input.principal as principal
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
			"epsilon", "epsilon_budget_per_day", "rate_limit",
		}
	}
}
