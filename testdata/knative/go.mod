module s

go 1.25.0

require (
	function v0.0.0-00010101000000-000000000000
	knative.dev/func-go v0.22.0
)

require (
	github.com/mattn/go-colorable v0.1.15 // indirect
	github.com/mattn/go-isatty v0.0.23 // indirect
	github.com/rs/zerolog v1.35.1 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

replace function => ./f
