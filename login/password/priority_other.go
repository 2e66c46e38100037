//go:build !linux

package password

import "errors"

func lowerThreadPriority() error {
	return errors.New("password: thread priorities are only supported on Linux")
}

// LowPrioritySupported reports whether Config.LowPriority can work here.
const LowPrioritySupported = false

func onMainThread() bool { return false }

func threadID() int { return 0 }
