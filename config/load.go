package config

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// WarnNoSMTP is the warning Load returns when smtp_url is not set. cmd may
// drop it in --demo mode, where mail in the log is the point.
const WarnNoSMTP = "smtp_url: not set; mail (sign-in codes included) is written to the log instead of being sent"

// Load builds the effective configuration: defaults, then the YAML file at
// path (skipped when path is ""), then the LATCHKEY_* variables in environ
// (a list of "NAME=value", as from os.Environ; the package never reads the
// process environment itself), then derived defaults and validation.
//
// The file is decoded strictly: an unknown key is an error. A key with an
// empty (null) value keeps its default; a variable set to "" is ignored
// (so the file's value stands). Lists and maps given in the file or the
// environment replace the default wholesale. Strings in variables are
// taken literally (no YAML quoting).
//
// On error the configuration is nil. A *ValidationError lists every problem
// found at once (decoding and validation alike), one per line, each with its
// key path and where the value came from. Warnings are for the operator's
// log: unknown LATCHKEY_* variables, mail written to the log.
func Load(path string, environ []string) (*Config, []string, error) {
	c := Default()
	c.origin = make(map[string]string)
	p := &problems{origin: c.origin, undecodable: make(map[string]bool)}
	if path != "" {
		root, err := readYAML(path)
		if err != nil {
			return nil, nil, err
		}
		d := decoder{p: p}
		d.decode(root, reflect.ValueOf(c).Elem(), "")
	}
	warnings := applyEnv(c, environ, p)
	if w := c.resolveDataDir(path, environ); w != "" {
		warnings = append(warnings, w)
	}
	c.resolveThemePaths(path)
	c.fillDerived()
	c.check(p)
	if err := p.err(); err != nil {
		return nil, warnings, err
	}
	if c.SMTPURL == "" {
		warnings = append(warnings, WarnNoSMTP)
	}
	return c, warnings, nil
}

// LegacyDataDir was data_dir's default before 0.2: a folder of the working
// directory, so a command run from elsewhere silently made a new, empty
// database. Load still uses it, with a warning, when it holds a database
// and data_dir is not set.
const LegacyDataDir = "latchkey-data"

// resolveDataDir makes data_dir absolute: a relative path from the file is
// relative to the file's directory (so every command run with --config
// finds the same database, wherever it is run from), one from the
// environment to the working directory. Unset, it is DefaultDataDir. It
// returns a warning, or "".
func (c *Config) resolveDataDir(path string, environ []string) string {
	if c.DataDir == "" {
		legacy, _ := filepath.Abs(LegacyDataDir)
		if _, err := os.Stat(filepath.Join(legacy, "latchkey.db")); err == nil && c.DatabaseURL == "" {
			c.DataDir = legacy
			return "data_dir: not set; using the database in " + legacy + " (the old default); set data_dir to keep using it"
		}
		c.DataDir = DefaultDataDir(environ)
		return ""
	}
	if filepath.IsAbs(c.DataDir) {
		c.DataDir = filepath.Clean(c.DataDir)
		return ""
	}
	if path != "" && c.origin["data_dir"] != "" && !strings.HasPrefix(c.origin["data_dir"], "from ") {
		if dir, err := filepath.Abs(filepath.Dir(path)); err == nil {
			c.DataDir = filepath.Join(dir, c.DataDir)
			return ""
		}
	}
	if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	return ""
}

// resolveThemePaths makes the theme's files absolute, as resolveDataDir
// does data_dir: relative to the file's directory when the file set them,
// else to the working directory. A logo URL stays as it is.
func (c *Config) resolveThemePaths(path string) {
	t := &c.Theme
	keys := []struct {
		key string
		v   *string
	}{{"theme.css", &t.CSS}, {"theme.dir", &t.Dir}}
	if !t.LogoIsURL() {
		keys = append(keys, struct {
			key string
			v   *string
		}{"theme.logo", &t.Logo})
	}
	for _, k := range keys {
		if *k.v == "" || filepath.IsAbs(*k.v) {
			continue
		}
		base := ""
		if path != "" && c.origin[k.key] != "" && !strings.HasPrefix(c.origin[k.key], "from ") {
			base = filepath.Dir(path)
		}
		if abs, err := filepath.Abs(filepath.Join(base, *k.v)); err == nil {
			*k.v = abs
		}
	}
}

// DefaultDataDir is data_dir when none is set: $XDG_DATA_HOME/latchkey,
// else $HOME/.local/share/latchkey, else /var/lib/latchkey (read from
// environ, never from the process).
func DefaultDataDir(environ []string) string {
	get := func(name string) string {
		v := ""
		for _, kv := range environ {
			if k, val, ok := strings.Cut(kv, "="); ok && k == name {
				v = val
			}
		}
		return v
	}
	if x := get("XDG_DATA_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "latchkey")
	}
	if h := get("HOME"); filepath.IsAbs(h) && h != "/" {
		return filepath.Join(h, ".local", "share", "latchkey")
	}
	return "/var/lib/latchkey"
}

// readYAML parses the file into a node tree; syntax errors stop here, since
// nothing after them can be trusted.
func readYAML(path string) (*yaml.Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var root yaml.Node
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %s: expected a single YAML document", path)
	}
	return &root, nil
}

// applyEnv applies the LATCHKEY_* overrides in key order (so problems come
// out in a stable order) and returns warnings for unknown variables.
func applyEnv(c *Config, environ []string, p *problems) []string {
	var warnings []string
	values := make(map[string]string)
	warned := make(map[string]bool)
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || nonConfigEnv[name] {
			continue
		}
		if _, ok := envKeys()[name]; !ok {
			if !warned[name] {
				warned[name] = true
				warnings = append(warnings, name+": unknown configuration variable, ignored"+suggest(name, slices.Sorted(maps.Keys(envKeys()))))
			}
			continue
		}
		if val != "" {
			values[name] = val // the last one wins
		}
	}
	root := reflect.ValueOf(c).Elem()
	for _, k := range keysOnce() {
		val, ok := values[k.env]
		if k.env == "" || !ok {
			continue
		}
		for path := range p.origin { // the variable replaces what the file said
			if path == k.path || strings.HasPrefix(path, k.path+".") || strings.HasPrefix(path, k.path+"[") {
				delete(p.origin, path)
			}
		}
		d := decoder{p: p, env: k.env}
		field := root.FieldByIndex(k.index)
		var node yaml.Node
		switch k.typ.Kind() {
		case reflect.Slice, reflect.Map:
			// Lists and maps are YAML (flow style or JSON) in one variable.
			if err := yaml.Unmarshal([]byte(val), &node); err != nil {
				p.addAt(k.path, "from "+k.env, "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
				continue
			}
		case reflect.String:
			// Taken literally: no YAML quoting or comments.
			node = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}
		default:
			node = yaml.Node{Kind: yaml.ScalarNode, Value: val}
		}
		d.decode(&node, field, k.path)
	}
	return warnings
}

// decoder walks a YAML node tree alongside the config struct. Unlike
// yaml.v3's own decoding it keeps going after a problem, so the operator
// sees every unknown key and bad value at once, each with its key path.
type decoder struct {
	p   *problems
	env string // the variable being decoded; "" for the file
}

func (d *decoder) where(n *yaml.Node) string {
	if d.env != "" {
		return "from " + d.env
	}
	return "line " + strconv.Itoa(n.Line)
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.p.undecodable[path] = true
	d.p.addAt(path, d.where(n), format, args...)
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
		return // empty: keep the default
	}
	if path != "" {
		d.p.origin[path] = d.where(n)
	}
	if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
		if err := u.UnmarshalYAML(n); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			d.decode(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping")
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		d.eachKey(n, path, func(name string, val *yaml.Node) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, join(path, name))
			m.SetMapIndex(reflect.ValueOf(name), e)
		})
		v.Set(m)
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.decode(n, e.Elem(), path)
		v.Set(e)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a string")
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := parseBool(n)
		if !ok {
			d.fail(n, path, "expected true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	default:
		panic("config: no decoder for " + v.Type().String()) // a new field type needs a case here
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		if path == "" {
			d.fail(n, "file", "expected a mapping of keys")
		} else {
			d.fail(n, path, "expected a mapping")
		}
		return
	}
	fields := make(map[string]int)
	var names []string
	for i := range v.NumField() {
		if name := yamlName(v.Type().Field(i)); name != "" {
			fields[name] = i
			names = append(names, name)
		}
	}
	d.eachKey(n, path, func(name string, val *yaml.Node) {
		i, ok := fields[name]
		if !ok {
			d.fail(val, join(path, name), "unknown key%s", suggest(name, names))
			return
		}
		d.decode(val, v.Field(i), join(path, name))
	})
}

// eachKey calls fn for each key of a mapping, reporting duplicates and
// non-scalar keys. Merge keys ("<<: *base") are expanded, local keys
// winning, so operators can share settings between clients.
func (d *decoder) eachKey(n *yaml.Node, path string, fn func(name string, val *yaml.Node)) {
	seen := make(map[string]int)
	var merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergePairs(val, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "expected a scalar key")
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.fail(k, join(path, k.Value), "duplicate key (first at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, val)
	}
	for _, kv := range merged {
		if _, local := seen[kv[0].Value]; !local && kv[0].Kind == yaml.ScalarNode {
			seen[kv[0].Value] = kv[0].Line
			fn(kv[0].Value, kv[1])
		}
	}
}

// mergePairs returns the key/value pairs of a merge value: a mapping or a
// list of mappings, the earlier ones winning (YAML merge key spec).
func (d *decoder) mergePairs(n *yaml.Node, path string) [][2]*yaml.Node {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	var out [][2]*yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
		}
	case yaml.SequenceNode:
		for _, e := range n.Content {
			out = append(out, d.mergePairs(e, path)...)
		}
	default:
		d.fail(n, join(path, "<<"), "expected a mapping to merge")
	}
	return out
}

func parseBool(n *yaml.Node) (bool, bool) {
	if n.Kind != yaml.ScalarNode {
		return false, false
	}
	switch strings.ToLower(n.Value) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
