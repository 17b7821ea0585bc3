package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, Env{Stdout: &out, Stderr: &errb, Version: "v1.2.3", RunDir: "/nonexistent/bitw-test-run"})
	return code, out.String(), errb.String()
}

func TestDispatch(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		code       int
		out, errSS string
	}{
		{nil, ExitUsage, "", "usage: bitw COMMAND"},
		{[]string{"version"}, ExitOK, "bitw v1.2.3\n", ""},
		{[]string{"version", "x"}, ExitUsage, "", "takes no arguments"},
		{[]string{"help"}, ExitOK, "usage: bitw COMMAND", ""},
		{[]string{"run", "-c", "x.toml"}, ExitUsage, "", "x.toml:1: cannot read"},
		{[]string{"run"}, ExitUsage, "", "usage: bitw run -c FILE"},
		{[]string{"run", "-c", "x.toml", "extra"}, ExitUsage, "", "usage: bitw run -c FILE"},
		{[]string{"status"}, ExitUsage, "", "bitw: no control socket in /nonexistent/bitw-test-run"},
		{[]string{"poweroff"}, ExitUsage, "", `bitw: unknown command "poweroff"`},
		{[]string{"frob"}, ExitUsage, "", `bitw: unknown command "frob"`},
		{[]string{"check"}, ExitUsage, "", "usage: bitw check -c FILE"},
		{[]string{"check", "-c"}, ExitUsage, "", "flag needs an argument"},
		{[]string{"check", "-x", "a"}, ExitUsage, "", "flag provided but not defined"},
		{[]string{"check", "-c", "a.toml", "extra"}, ExitUsage, "", "usage: bitw check -c FILE"},
	} {
		code, out, errs := run(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.errSS) {
			t.Errorf("%q: code %d, stdout %q, stderr %q", tc.args, code, out, errs)
		}
		if tc.errSS == "" && errs != "" {
			t.Errorf("%q: unexpected stderr %q", tc.args, errs)
		}
	}
}

func TestCheck(t *testing.T) {
	code, out, errs := run("check", "-c", "../../examples/site-a.toml")
	if code != ExitOK || errs != "" || out != "../../examples/site-a.toml: ok: device gw-a, 1 connection, 1 child\n" {
		t.Errorf("good config: code %d, stdout %q, stderr %q", code, out, errs)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	src := "[device]\nname = \"gw-a\"\nlog_level = \"loud\"\n[interfaces.red]\nlink = \"red0\"\naddress = \"192.168.1.1/24\"\n" +
		"[interfaces.black]\nlink = \"black0\"\naddress = \"203.0.113.1/24\"\nmtu = 10\n"
	if err := os.WriteFile(bad, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = run("check", "-c", bad)
	if code != ExitUsage || out != "" {
		t.Errorf("bad config: code %d, stdout %q", code, out)
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], bad+":3: ") || !strings.HasPrefix(lines[1], bad+":10: ") {
		t.Errorf("stderr %q", errs)
	}
	warn := filepath.Join(dir, "warn.toml")
	if err := os.WriteFile(warn, []byte("[device]\nname = \"gw-a\"\n[interfaces.red]\nlink = \"red0\"\naddress = \"192.168.1.1/24\"\n"+
		"[interfaces.black]\nlink = \"black0\"\naddress = \"203.0.113.1/24\"\n[policy]\ndefault = \"bypass\"\n[connections]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = run("check", "-c", warn)
	if code != ExitOK || !strings.HasPrefix(errs, warn+":10: warning: ") || !strings.Contains(out, "0 connections, 0 children") {
		t.Errorf("warnings: code %d, stdout %q, stderr %q", code, out, errs)
	}
	code, _, errs = run("check", "-c", filepath.Join(dir, "missing.toml"))
	if code != ExitUsage || !regexp.MustCompile(`missing\.toml:1: cannot read`).MatchString(errs) {
		t.Errorf("missing file: code %d, stderr %q", code, errs)
	}
}

func TestVersion(t *testing.T) {
	info := func(version string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Version: version}, Settings: settings}, true
		}
	}
	for _, tc := range []struct {
		env  Env
		want string
	}{
		{Env{Version: "v1.0.0", ReadBuildInfo: info("v0.9.0")}, "v1.0.0"},
		{Env{ReadBuildInfo: info("v0.9.0")}, "v0.9.0"},
		{Env{ReadBuildInfo: info("(devel)")}, "devel"},
		{Env{ReadBuildInfo: info("(devel)", debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123"}, debug.BuildSetting{Key: "vcs.modified", Value: "true"})}, "devel+0123456789ab-dirty"},
		{Env{ReadBuildInfo: func() (*debug.BuildInfo, bool) { return nil, false }}, "devel"},
	} {
		if got := Version(tc.env); got != tc.want {
			t.Errorf("Version = %q, want %q", got, tc.want)
		}
	}
}
