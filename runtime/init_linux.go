package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/runtime/initproc"
)

// runAsInit keeps tug as PID 1: it starts the command, forwards signals
// to it, reaps every child, serves exec requests, and exits with the
// command's status.
func runAsInit(spec *initproc.Config, path string, fail func(int, error)) {
	if spec.SpareThreads {
		spareThreads(initSpares)
	}
	// Nothing in the container may ptrace or open this process.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	attr := &syscall.ProcAttr{Env: spec.Env, Files: []uintptr{0, 1, 2}, Sys: &syscall.SysProcAttr{}}
	attr.Sys.Credential = credential(spec.UID, spec.GID, spec.AdditionalGIDs)
	if spec.Tty {
		// The command's process group owns the terminal, for job control.
		attr.Sys.Setpgid, attr.Sys.Foreground, attr.Sys.Ctty = true, true, 0
	}
	// ForkExec runs on this locked thread, so the child inherits its
	// capabilities and seccomp filter (a non-root user loses the
	// capabilities on exec, as in Docker).
	pid, err := syscall.ForkExec(path, spec.Args, attr)
	if err != nil {
		code := 126
		if errors.Is(err, unix.ENOENT) {
			code = 127
		}
		fail(code, fmt.Errorf("exec %s: %w", spec.Args[0], err))
	}
	// The command started: close the error pipe so the parent stops waiting.
	unix.Close(initproc.ErrorFD)

	requests := make(chan *execRequest)
	if spec.Exec {
		go serveExec(requests)
	}
	execs := map[int]*execRequest{}
	for {
		select {
		case r := <-requests:
			if p, err := startExec(spec, r); err != nil {
				r.reply(err)
			} else {
				execs[p] = r
			}
			continue
		case s := <-sigs:
			switch s {
			case syscall.SIGCHLD:
			case syscall.SIGURG, syscall.SIGPIPE:
				continue // the Go runtime's own, or ours alone
			default:
				_ = syscall.Kill(pid, s.(syscall.Signal))
				continue
			}
		}
		for {
			var ws syscall.WaitStatus
			wpid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err != nil || wpid <= 0 {
				break
			}
			code := ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
			if r, ok := execs[wpid]; ok {
				r.exited(code)
				delete(execs, wpid)
			}
			if wpid == pid {
				os.Exit(code)
			}
		}
	}
}

// credential is ForkExec's switch to uid:gid and the supplementary
// groups, or nil to stay root with the init's groups (the image's for
// root, which Main gave it, or none where only one id is mapped).
// Where only one id is mapped, groups cannot be set.
func credential(uid, gid uint32, groups []uint32) *syscall.Credential {
	if uid == 0 && gid == 0 && !slices.ContainsFunc(groups, func(g uint32) bool { return g != 0 }) {
		return nil
	}
	c := &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}
	if b, err := os.ReadFile("/proc/self/setgroups"); err == nil && strings.TrimSpace(string(b)) == "deny" {
		c.NoSetGroups = true
	}
	return c
}
