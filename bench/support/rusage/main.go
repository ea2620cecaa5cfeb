// `rusage <command> [args...]`: runs the command with this process's stdin, stdout and stderr and, once it
// has ended, writes `<user µs> <system µs> <max RSS KiB> <exit code>` to file descriptor 3. GNU time reports
// CPU in hundredths of a second, too coarse for a process that costs a few milliseconds; wait4's rusage
// has microseconds. The rusage covers the command and every process it waited for (a plugin it exec'ed is
// the same process). Used by bench/scenarios/exec.ts.

package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rusage <command> [args...]")
		os.Exit(2)
	}
	report := os.NewFile(3, "report")
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintf(os.Stderr, "rusage: %v\n", err)
		os.Exit(127)
	}
	usage := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	micros := func(t syscall.Timeval) int64 { return t.Sec*1_000_000 + t.Usec }
	fmt.Fprintf(report, "%d %d %d %d\n", micros(usage.Utime), micros(usage.Stime), usage.Maxrss, cmd.ProcessState.ExitCode())
	os.Exit(0)
}
