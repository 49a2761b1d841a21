package netnstest

import (
	"time"

	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// PatienceEnv is runtest.PatienceEnv: the environment variable that
// multiplies how long the real-kernel tests wait.
const PatienceEnv = runtest.PatienceEnv

// Patience is runtest.Patience: d multiplied by $MPTCPGOD_TEST_PATIENCE.
// The scaling lives in runtest, which builds on every system; netnstest
// builds on Linux only.
func Patience(d time.Duration) time.Duration { return runtest.Patience(d) }
