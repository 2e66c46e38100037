package password

import "syscall"

// lowerThreadPriority gives the calling OS thread the niceness
// lowPriorityNice. On Linux niceness belongs to the thread (setpriority
// with a thread ID), so the rest of the process keeps its priority.
func lowerThreadPriority() error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), lowPriorityNice)
}

// LowPrioritySupported reports whether Config.LowPriority can work here.
const LowPrioritySupported = true

// onMainThread reports whether the calling goroutine runs on the process's
// main thread, whose niceness ps and top show as the whole process's.
func onMainThread() bool { return syscall.Gettid() == syscall.Getpid() }

// threadID is the calling thread's ID.
func threadID() int { return syscall.Gettid() }
