module s

go 1.25.0

require (
	function v0.0.0-00010101000000-000000000000
	knative.dev/func-go v0.22.0
)

replace function => ./f
