//go:build !unix

package redistest

import "os"

// Pause and Resume need job-control signals, which this platform lacks.
var (
	pauseSignal  os.Signal
	resumeSignal os.Signal
)
