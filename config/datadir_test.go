package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDataDirIsAbsolute: every command finds the same database wherever
// it runs: a relative data_dir in a file is relative to the file, unset
// it is one absolute place taken from the environment.
func TestDataDirIsAbsolute(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "latchkey.yaml")
	if err := os.WriteFile(file, []byte("data_dir: state\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		environ []string
		want    string
	}{
		{"relative in the file: beside the file", file, nil, filepath.Join(dir, "state")},
		{"XDG_DATA_HOME", "", []string{"HOME=/home/ada", "XDG_DATA_HOME=/srv/data"}, "/srv/data/latchkey"},
		{"HOME", "", []string{"HOME=/home/ada"}, "/home/ada/.local/share/latchkey"},
		{"nothing", "", nil, "/var/lib/latchkey"},
		{"absolute in the environment", file, []string{"LATCHKEY_DATA_DIR=/data/lk/"}, "/data/lk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := Load(tc.path, tc.environ)
			if err != nil {
				t.Fatal(err)
			}
			if c.DataDir != tc.want || c.DatabaseURL != "sqlite:"+tc.want+"/latchkey.db" {
				t.Fatalf("data_dir %q, database_url %q; want %q", c.DataDir, c.DatabaseURL, tc.want)
			}
		})
	}
	// A relative variable is relative to the working directory.
	c, _, err := Load("", []string{"LATCHKEY_DATA_DIR=rel"})
	if err != nil {
		t.Fatal(err)
	}
	if wd, _ := os.Getwd(); c.DataDir != filepath.Join(wd, "rel") {
		t.Fatalf("data_dir %q", c.DataDir)
	}
}

// TestThemePathsAreAbsolute: the theme's files in a file are relative to
// the file, like data_dir; a logo URL is left alone.
func TestThemePathsAreAbsolute(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "latchkey.yaml")
	if err := os.WriteFile(file, []byte("theme:\n  logo: brand/logo.svg\n  css: brand/extra.css\n  dir: brand/templates\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	th := c.Theme
	if th.Logo != filepath.Join(dir, "brand/logo.svg") || th.CSS != filepath.Join(dir, "brand/extra.css") || th.Dir != filepath.Join(dir, "brand/templates") {
		t.Fatalf("theme %+v", th)
	}
	c, _, err = Load("", []string{"LATCHKEY_THEME_LOGO=http://localhost:8080/logo.png"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Theme.Logo != "http://localhost:8080/logo.png" {
		t.Fatalf("logo URL became %q", c.Theme.Logo)
	}
}
