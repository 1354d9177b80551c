package commands

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/tugcli/tug/remote"
)

// LoginCmd is `tug login`.
type LoginCmd struct {
	Username      string `short:"u" help:"Username." placeholder:"USER"`
	Password      string `short:"p" help:"Password (prefer --password-stdin: a password on the command line is visible to other users)." placeholder:"PASS"`
	PasswordStdin bool   `name:"password-stdin" help:"Read the password from stdin."`
	TLSVerify     bool   `name:"tls-verify" default:"true" negatable:"" help:"Require HTTPS and verify certificates for non-loopback registries (--tls-verify=false allows plain HTTP)."`
	Registry      string `arg:"" name:"REGISTRY" help:"Registry to log in to, e.g. registry.example.com or 127.0.0.1:5000."`
}

// Run checks the credentials with the registry and stores them in Docker's
// config.json (or its credential helper).
func (c *LoginCmd) Run(ctx context.Context, env *Env) error {
	user, password := c.Username, c.Password
	switch {
	case c.PasswordStdin && password != "":
		return &ExitError{Code: 125, Err: errors.New("conflicting options: cannot specify both --password and --password-stdin")}
	case c.PasswordStdin && user == "":
		return &ExitError{Code: 125, Err: errors.New("the --password-stdin option requires --username to be set")}
	case c.PasswordStdin:
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return fmt.Errorf("reading the password from stdin: %w", err)
		}
		// As Docker: only the line ending typed or piped after it goes.
		for _, eol := range []string{"\r\n", "\n", "\r"} {
			var ok bool
			if b, ok = bytes.CutSuffix(b, []byte(eol)); ok {
				break
			}
		}
		password = string(b)
	case password != "":
		fmt.Fprintln(env.Stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
	}
	if user == "" || password == "" {
		var err error
		if user, password, err = prompt(env, user, password); err != nil {
			return err
		}
	}
	client := remote.NewClient(remote.Options{Insecure: !c.TLSVerify, UserAgent: "tug/" + Version})
	if _, err := client.Login(ctx, c.Registry, user, password); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "Login Succeeded")
	return nil
}

// prompt asks for what is missing, on a terminal only; the password is
// not echoed.
func prompt(env *Env, user, password string) (string, string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", "", &ExitError{Code: 125, Err: errors.New("no username or password given and stdin is not a terminal: pass -u USER and --password-stdin")}
	}
	if user == "" {
		fmt.Fprint(env.Stderr, "Username: ")
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			return "", "", fmt.Errorf("reading the username: %w", err)
		}
		if user = strings.TrimSpace(line); user == "" {
			return "", "", &ExitError{Code: 125, Err: errors.New("username is empty")}
		}
	}
	if password == "" {
		fmt.Fprint(env.Stderr, "Password: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", "", fmt.Errorf("reading the password: %w", err)
		}
		if password = string(b); password == "" {
			return "", "", &ExitError{Code: 125, Err: errors.New("password is empty")}
		}
	}
	return user, password, nil
}

// LogoutCmd is `tug logout`.
type LogoutCmd struct {
	Registry string `arg:"" name:"REGISTRY" help:"Registry to log out from."`
}

// Run removes the registry's credentials from Docker's config.json.
func (c *LogoutCmd) Run(ctx context.Context, env *Env) error {
	res, err := remote.Logout(c.Registry)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Removing login credentials for %s\n", res.Host)
	if !res.Removed {
		fmt.Fprintf(env.Stderr, "WARNING: not logged in to %s\n", res.Host)
	}
	for _, f := range res.Elsewhere {
		fmt.Fprintf(env.Stderr, "WARNING: %s still holds credentials for %s, and tug reads it (podman logout removes them)\n", f, res.Host)
	}
	return nil
}
