package config

import (
	"reflect"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts the name of every configuration environment variable.
const EnvPrefix = "LATCHKEY_"

// nonConfigEnv are LATCHKEY_* variables that belong to something else (the
// test suites) and are ignored without a warning.
var nonConfigEnv = map[string]bool{
	"LATCHKEY_TEST_DATABASE_URL": true,
}

// key is one configuration key, found by reflection over the yaml tags so
// the list cannot drift from the struct.
type key struct {
	path  string       // "policy.rollout.default", "clients[].id"
	env   string       // "LATCHKEY_POLICY_ROLLOUT_DEFAULT"; "" inside lists
	index []int        // field index from Config; nil inside lists
	typ   reflect.Type // the field's type
}

var keysOnce = sync.OnceValue(func() []key {
	var out []key
	collectKeys(reflect.TypeFor[Config](), "", nil, true, &out)
	return out
})

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// isLeaf reports whether a value of type t is set as a whole (a scalar, a
// list, a map, or a type that parses itself) rather than key by key.
func isLeaf(t reflect.Type) bool {
	return t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerType)
}

func collectKeys(t reflect.Type, prefix string, index []int, settable bool, out *[]key) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		idx := append(append([]int(nil), index...), i)
		if !isLeaf(f.Type) {
			collectKeys(f.Type, path, idx, settable, out)
			continue
		}
		k := key{path: path, typ: f.Type}
		if settable {
			k.env = envName(path)
			k.index = idx
		}
		*out = append(*out, k)
		// Document the keys of list elements too ("clients[].id").
		if f.Type.Kind() == reflect.Slice && !isLeaf(f.Type.Elem()) {
			collectKeys(f.Type.Elem(), path+"[]", nil, false, out)
		}
	}
}

// yamlName returns the key of a struct field, "" when it has none.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// envName is the naming rule: LATCHKEY_ + the path, upper case, dots as
// underscores.
func envName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// KeyPaths lists every configuration key path in file order: the keys that
// can be set as a whole ("issuer", "policy.rollout.regions", "clients") and,
// for documentation, the keys inside list elements ("clients[].id"). Pass a
// path to EnvVar for its environment variable.
func KeyPaths() []string {
	ks := keysOnce()
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.path
	}
	return out
}

// EnvVar returns the environment variable that overrides path, and false
// for paths inside list elements (set the whole list instead) or unknown
// paths.
func EnvVar(path string) (string, bool) {
	for _, k := range keysOnce() {
		if k.path == path && k.env != "" {
			return k.env, true
		}
	}
	return "", false
}

// envKeys maps each environment variable to its key.
var envKeys = sync.OnceValue(func() map[string]key {
	m := make(map[string]key)
	for _, k := range keysOnce() {
		if k.env != "" {
			if _, dup := m[k.env]; !dup { // a clash is caught by TestEnvNamesUnique
				m[k.env] = k
			}
		}
	}
	return m
})
