package i18n

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"text/template/parse"

	"github.com/latchkey/latchkey/config"
	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
)

// The catalogue's rules, checked for every file in locales/ (a new
// language is one more file, and these tests check it at once):
//
//   - every message of English is in every other file, and no file has a
//     message English lacks: nothing falls back to English silently;
//   - a message's forms parse, use only the placeholders English gives
//     it, keep the markup of _html messages tag for tag, and are not
//     empty; a plural message has every CLDR plural form its language
//     needs for the counts we show (0 to 1000);
//   - every id the templates and the Go code use exists in English, and
//     every English message is used somewhere.

// repoRoot is the module's root, from this package's directory.
const repoRoot = "../.."

func englishMessages(t *testing.T) map[string]*goi18n.Message {
	t.Helper()
	b, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*goi18n.Message{}
	for _, m := range b.MessageFile(English).Messages {
		out[m.ID] = m
	}
	return out
}

func forms(m *goi18n.Message) map[plural.Form]string {
	out := map[plural.Form]string{}
	for f, s := range map[plural.Form]string{plural.Zero: m.Zero, plural.One: m.One, plural.Two: m.Two,
		plural.Few: m.Few, plural.Many: m.Many, plural.Other: m.Other} {
		if s != "" {
			out[f] = s
		}
	}
	return out
}

var placeholder = regexp.MustCompile(`{{-?\s*\.([A-Za-z][A-Za-z0-9_]*)\s*-?}}`)

// placeholders are the {{.Name}}s of a message's forms.
func placeholders(m *goi18n.Message) []string {
	set := map[string]bool{}
	for _, s := range forms(m) {
		for _, p := range placeholder.FindAllStringSubmatch(s, -1) {
			set[p[1]] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

var tagRE = regexp.MustCompile(`</?[a-zA-Z][^>]*>`)

// tags are the markup of a message with its placeholders' names kept.
func tags(s string) []string {
	out := tagRE.FindAllString(s, -1)
	sort.Strings(out)
	return out
}

// neededForms are the plural forms language tag uses for the counts 0 to
// 1000 (CLDR rules of golang.org/x/text).
func neededForms(tag language.Tag) map[plural.Form]bool {
	out := map[plural.Form]bool{}
	for n := 0; n <= 1000; n++ {
		out[plural.Cardinal.MatchPlural(tag, n, 0, 0, 0, 0)] = true
	}
	return out
}

func formName(f plural.Form) string {
	return map[plural.Form]string{plural.Zero: "zero", plural.One: "one", plural.Two: "two", plural.Few: "few",
		plural.Many: "many", plural.Other: "other"}[f]
}

// TestCatalogueFiles checks each locale file against English.
func TestCatalogueFiles(t *testing.T) {
	b, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	en := englishMessages(t)
	files, _ := fs.Glob(localeFS, "locales/*.toml")
	if len(files) != len(b.Languages()) {
		t.Fatalf("%d files, %d languages", len(files), len(b.Languages()))
	}
	for _, lang := range b.Languages() {
		t.Run(lang, func(t *testing.T) {
			mf := b.MessageFile(lang)
			tag := language.MustParse(lang)
			need := neededForms(tag)
			got := map[string]*goi18n.Message{}
			for _, m := range mf.Messages {
				if got[m.ID] != nil {
					t.Errorf("%s: twice", m.ID)
				}
				got[m.ID] = m
			}
			for id := range en {
				if got[id] == nil {
					t.Errorf("%s: missing (it would fall back to English)", id)
				}
			}
			for id, m := range got {
				e := en[id]
				if e == nil {
					t.Errorf("%s: not in English (en.toml): a typo, or a message English dropped", id)
					continue
				}
				fm := forms(m)
				if len(fm) == 0 {
					t.Errorf("%s: empty", id)
				}
				for f, s := range fm {
					if strings.TrimSpace(s) == "" {
						t.Errorf("%s (%s): empty", id, formName(f))
					}
					if _, err := template.New(id).Option("missingkey=error").Parse(s); err != nil {
						t.Errorf("%s (%s): %v", id, formName(f), err)
					}
					if IsHTML(id) && !slices.Equal(tags(s), tags(e.Other)) {
						t.Errorf("%s (%s): markup %v, English has %v", id, formName(f), tags(s), tags(e.Other))
					}
					if !IsHTML(id) && tagRE.MatchString(s) {
						t.Errorf("%s (%s): markup in a text message (ids of messages with markup end in %s)", id, formName(f), HTMLSuffix)
					}
				}
				allowed := placeholders(e)
				if e.One != "" {
					allowed = append(allowed, "Count")
				}
				for _, p := range placeholders(m) {
					if !slices.Contains(allowed, p) {
						t.Errorf("%s: {{.%s}} is not one of English's placeholders %v", id, p, allowed)
					}
				}
				isPlural := e.One != "" || e.Other == "" || len(forms(e)) > 1
				if isPlural {
					for f := range need {
						if fm[f] == "" {
							t.Errorf("%s: plural form %q missing (%s needs %v)", id, formName(f), lang, formNames(need))
						}
					}
				} else if len(fm) != 1 || fm[plural.Other] == "" {
					t.Errorf("%s: English has one form (other); so must this", id)
				}
			}
		})
	}
}

func formNames(fs map[plural.Form]bool) []string {
	var out []string
	for f := range fs {
		out = append(out, formName(f))
	}
	sort.Strings(out)
	return out
}

// TestIDsUsedExist: every message id in the templates and the Go code is
// in English, and every English message is used. Go code names ids only
// as literals in i18n.M, i18n.N, a localizer's T and TN, and op's pageMsg
// (so that this test sees them); the few functions that pass a caller's
// id on are listed in forwarders.
func TestIDsUsedExist(t *testing.T) {
	en := englishMessages(t)
	used := map[string][]string{} // id → where
	use := func(id, where string) { used[id] = append(used[id], where) }

	// Templates: {{t "id" …}}, {{tn "id" …}}, (t "id" …).
	tmplID := regexp.MustCompile(`[{(]\s*-?\s*(t|tn)\s+"([^"]*)"`)
	var templates int
	err := filepath.WalkDir(filepath.Join(repoRoot, "login"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(filepath.Dir(p)) != "templates" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		templates++
		text := strings.HasSuffix(p, ".txt.tmpl")
		for _, m := range tmplID.FindAllStringSubmatch(string(b), -1) {
			use(m[2], p)
			if text && IsHTML(m[2]) {
				t.Errorf("%s: %s has markup, in a text mail", p, m[2])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if templates < 40 {
		t.Fatalf("found only %d templates", templates)
	}

	// Go: calls with a literal id.
	forwarders := map[string]bool{
		"login/internal/web/languages.go:funcs":  true, // the templates' t/tn, ids checked above
		"login/internal/web/errors.go:ErrorPage": true, // op's pageMsg ids
		"login/mail/templates.go:textFuncs":      true,
		"login/mail/templates.go:htmlFuncs":      true,
	}
	fset := token.NewFileSet()
	var goFiles int
	for _, dir := range []string{"login", "cmd", "op"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			rel, _ := filepath.Rel(repoRoot, p)
			inI18n := filepath.ToSlash(filepath.Dir(rel)) == "login/i18n"
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				return err
			}
			goFiles++
			for _, decl := range f.Decls {
				fn, _ := decl.(*ast.FuncDecl)
				ast.Inspect(decl, func(n ast.Node) bool {
					if inI18n {
						// The formatting core names its ids in tables too.
						if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if s, err := strconv.Unquote(lit.Value); err == nil && en[s] != nil {
								use(s, rel)
							}
						}
					}
					call, ok := n.(*ast.CallExpr)
					if !ok || len(call.Args) == 0 {
						return true
					}
					name := ""
					switch fun := call.Fun.(type) {
					case *ast.SelectorExpr:
						if x, ok := fun.X.(*ast.Ident); ok && x.Name == "i18n" && (fun.Sel.Name == "M" || fun.Sel.Name == "N") {
							name = fun.Sel.Name
						} else if fun.Sel.Name == "T" || fun.Sel.Name == "TN" {
							name = fun.Sel.Name
						}
					case *ast.Ident:
						if fun.Name == "pageMsg" || (inI18n && (fun.Name == "M" || fun.Name == "N")) {
							name = fun.Name
						}
					}
					if name == "" {
						return true
					}
					where := fset.Position(call.Pos()).String()
					lit, ok := call.Args[0].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						if fn != nil && !inI18n && !forwarders[filepath.ToSlash(rel)+":"+fn.Name.Name] {
							t.Errorf("%s: %s with an id that is not a literal: name messages literally, so this test sees them", where, name)
						}
						return true
					}
					id, _ := strconv.Unquote(lit.Value)
					use(id, where)
					return true
				})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if goFiles < 50 {
		t.Fatalf("found only %d Go files", goFiles)
	}
	ids := make([]string, 0, len(used))
	for id := range used {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if en[id] == nil {
			t.Errorf("%s: used at %v, not in locales/en.toml", id, used[id])
		}
	}
	var unused []string
	for id := range en {
		if used[id] == nil {
			unused = append(unused, id)
		}
	}
	sort.Strings(unused)
	for _, id := range unused {
		t.Errorf("%s: in en.toml, used nowhere (remove it, or name it literally where it is used)", id)
	}
}

// TestTemplateFormsParse: the catalogue's templates use only placeholders
// (no functions, no pipelines a translator could break things with).
func TestTemplateFormsParse(t *testing.T) {
	b := MustLoad()
	for _, lang := range b.Languages() {
		for _, m := range b.MessageFile(lang).Messages {
			for f, s := range forms(m) {
				tr, err := parse.Parse(m.ID, s, "{{", "}}")
				if err != nil {
					continue // reported by TestCatalogueFiles
				}
				for _, n := range tr[m.ID].Root.Nodes {
					switch n := n.(type) {
					case *parse.TextNode:
					case *parse.ActionNode:
						if len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) != 1 || n.Pipe.Cmds[0].Args[0].Type() != parse.NodeField {
							t.Errorf("%s %s (%s): %s: only {{.Name}} placeholders", lang, m.ID, formName(f), n)
						}
					default:
						t.Errorf("%s %s (%s): %s: only {{.Name}} placeholders", lang, m.ID, formName(f), n)
					}
				}
			}
		}
	}
}

// TestConfigKnowsEveryLanguage: config accepts as default_language exactly
// the languages that have a catalogue file (config imports nothing of
// login/, so it keeps its own list).
func TestConfigKnowsEveryLanguage(t *testing.T) {
	got, want := slices.Sorted(slices.Values(config.KnownLanguages)), slices.Sorted(slices.Values(Languages()))
	if !slices.Equal(got, want) {
		t.Fatalf("config.KnownLanguages = %v, catalogue files = %v", got, want)
	}
}
