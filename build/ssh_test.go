package build

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func writeKey(t *testing.T, dir, passphrase string) (string, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase != "" {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	}
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "key"+passphrase)
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return p, sp
}

// --ssh ID=KEY serves the key from an agent of tug's own, read-only; a
// key with a passphrase, or no SSH_AUTH_SOCK for default, is a clear
// error.
func TestParseSSH(t *testing.T) {
	dir := t.TempDir()
	key, pub := writeKey(t, dir, "")
	id, a, err := ParseSSH("mykey=" + key)
	if err != nil || id != "mykey" {
		t.Fatalf("ParseSSH: %q %v", id, err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := a.listen(sock, 0, 0, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := agent.NewClient(c)
	keys, err := client.List()
	if err != nil || len(keys) != 1 || string(keys[0].Marshal()) != string(pub.Marshal()) {
		t.Fatalf("the agent lists %v, %v", keys, err)
	}
	if err := client.RemoveAll(); err == nil {
		t.Fatal("a step removed the keys")
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the socket: %v %v", fi, err)
	}

	protected, _ := writeKey(t, dir, "secret")
	if _, _, err := ParseSSH("default=" + protected); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("a key with a passphrase: %v", err)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	if _, _, err := ParseSSH("default"); err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK is not set") {
		t.Fatalf("default without SSH_AUTH_SOCK: %v", err)
	}
	if _, _, err := ParseSSH("default=" + filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing key file was accepted")
	}
}
