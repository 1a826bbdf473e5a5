package main

import (
	"fmt"
	"path/filepath"
)

// cmdHealth is "latchkey health": GET the server's /ready and exit 0 on
// 200, 1 otherwise — a healthcheck for a container without a shell.
func cmdHealth(env *cmdEnv, args []string) error {
	fs := newFlags("health", env)
	configPath := fs.String("config", "", "configuration file (for addr and tls)")
	url := fs.String("url", "", "the URL to check (default: /ready on this machine at the configured addr)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	target := *url
	if target == "" {
		cfg, _, err := loadConfig(env, *configPath, false)
		if err != nil {
			return err
		}
		if target, err = healthURL(cfg.Addr, cfg.TLS.Enabled()); err != nil {
			return usageErr("health: addr %q: %v", cfg.Addr, err)
		}
	}
	if err := checkHealth(env.ctx, target); err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	if env.isVerbose() {
		fmt.Fprintln(env.stdout, "ready:", target)
	}
	return nil
}

// cmdBackup is "latchkey backup FILE": an online copy of the SQLite
// database (VACUUM INTO). PostgreSQL is backed up with pg_dump.
func cmdBackup(env *cmdEnv, args []string) error {
	fs := newFlags("backup", env)
	configPath := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return parseFlags(fs, args) // the same messages and --help
	}
	if fs.NArg() != 1 {
		return usageErr("backup: expected one argument, the file to write (e.g. latchkey backup /backups/latchkey-$(date +%%F).db)")
	}
	file, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	a, err := openApp(env, *configPath, false)
	if err != nil {
		return err
	}
	defer a.close()
	if a.store.Dialect() != "sqlite" {
		return usageErr("backup: the database is PostgreSQL: back it up with pg_dump (see the README), and keep the secret key with it")
	}
	if err := a.store.Backup(env.ctx, file); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "backed up the database to %s; keep the secret key (secret_key or %s) with it: without it the signing keys and authenticator seeds cannot be opened\n",
		file, filepath.Join(a.cfg.DataDir, "secret.key"))
	return nil
}
