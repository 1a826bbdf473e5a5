// Package config owns Latchkey's configuration: the typed tree (Config), its
// defaults, strict YAML decoding (an unknown key is an error), the
// LATCHKEY_* environment overrides, derived defaults, and validation that
// reports every problem at once with its key path and origin (file line or
// variable). Other packages receive values from it through constructors;
// none of them parses configuration.
//
// Naming is a contract with operators. A key's path is its yaml tags joined
// by dots ("policy.session_idle"); its environment variable is LATCHKEY_
// plus the path in upper case with dots as underscores
// (LATCHKEY_POLICY_SESSION_IDLE). The mapping is derived from the struct
// tags by reflection (KeyPaths, EnvVar), so it cannot drift. Lists and maps
// (clients, organizations, policy.rollout.regions) are set as a whole, as
// YAML flow or JSON in one variable. The environment wins over the file.
//
// What it must not do: read the process environment (Load takes environ
// explicitly, so tests and cmd decide), or perform I/O other than reading
// the configuration file, looking for a database in the old default
// data_dir (./latchkey-data, see LegacyDataDir) and, in EnsureSecretKey,
// the development secret key in data_dir.
//
// data_dir is always absolute after Load: a relative path in the file is
// relative to the file, unset it is DefaultDataDir (from HOME or
// XDG_DATA_HOME in environ), so that every command run with the same
// configuration opens the same database wherever it is run from. The
// theme's files (theme.logo, theme.css, theme.dir) are made absolute the
// same way; they are read at start-up (login/theme), not here. It must never print a secret: Secret redacts itself in
// every format, messages never quote secret values, and URLs are shown
// with their passwords redacted.
//
// Durations: Duration is "type Duration time.Duration"; call Std() (or
// convert) for a time.Duration. It accepts "30d" and "1d12h" besides Go's
// syntax.
//
// The golden tests in testdata/ok (effective config, redacted) and
// testdata/bad (exact error lines) are the specification of behaviour;
// regenerate them only with "go test ./config -update" and review the diff.
package config
