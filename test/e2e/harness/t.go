package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// T is the part of testing.TB the harness uses. *testing.T satisfies it;
// the benchmark program supplies its own implementation.
type T interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	Name() string
}

var _ T = (*testing.T)(nil)

// Environment variables the harness reads.
const (
	// EnvE2E must be "1" for end-to-end tests to run (make e2e sets it).
	EnvE2E = "BITW_E2E"
	// EnvBitwBin names the bitw binary under test (make e2e sets it).
	EnvBitwBin = "BITW_BIN"
	// EnvLogDir, when set, keeps process logs and captures in
	// $BITW_E2E_LOGDIR/<test name>/ instead of the test's temporary
	// directory, which is deleted when the test ends.
	EnvLogDir = "BITW_E2E_LOGDIR"
)

// RequireE2E skips the test unless end-to-end tests were asked for
// (BITW_E2E=1) and the process runs as root. When they were asked for, a
// missing tool is a failure, not a skip: the environment is broken.
func RequireE2E(t testing.TB, tools ...string) {
	t.Helper()
	if os.Getenv(EnvE2E) != "1" {
		t.Skipf("end-to-end test: set %s=1 and run as root (make e2e does both)", EnvE2E)
	}
	if os.Geteuid() != 0 {
		t.Skipf("end-to-end test: needs root for network namespaces (euid %d)", os.Geteuid())
	}
	for _, tool := range append([]string{"ip", "sysctl"}, tools...) {
		if _, err := lookTool(tool); err != nil {
			t.Fatalf("end-to-end test needs %q: %v (scripts/install-deps.sh installs it)", tool, err)
		}
	}
}

// BitwBinary returns the bitw binary named by BITW_BIN. It skips the test
// when the variable is unset (outside make e2e) and fails it when the
// variable names something that is not an executable file.
func BitwBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvBitwBin)
	if bin == "" {
		t.Skipf("%s is not set: build bitw and run through make e2e", EnvBitwBin)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatalf("%s=%s: %v", EnvBitwBin, bin, err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		t.Fatalf("%s=%s is not an executable file", EnvBitwBin, bin)
	}
	return bin
}

// sbinDirs are searched after PATH: tests may run with a PATH that lacks
// the system directories.
var sbinDirs = []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"}

func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or %s", name, strings.Join(sbinDirs, ", "))
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// LogDir returns a directory for a test's logs and captures: a fresh
// temporary directory, or a directory under BITW_E2E_LOGDIR that outlives
// the test.
func LogDir(t T) string {
	t.Helper()
	base := os.Getenv(EnvLogDir)
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, unsafeName.ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("log dir: %v", err)
	}
	return dir
}
