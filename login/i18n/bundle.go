package i18n

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

//go:embed locales/*.toml
var localeFS embed.FS

// English is the language of the source catalogue (locales/en.toml): every
// message id exists in it, and every other catalogue translates it.
const English = "en"

// Pseudo is the pseudo-locale: English with every message accented and
// wrapped in ⟦ ⟧ (pseudo.go). It is generated from the English catalogue,
// never advertised, and offered only where the Chooser allows it.
const Pseudo = "en-XA"

// Bundle is the parsed catalogue of every embedded language, and the
// pseudo-locale. It is immutable once loaded.
type Bundle struct {
	b *goi18n.Bundle
	// langs are the languages of the locale files, English first, then
	// by tag.
	langs []string
	// files maps a language to its parsed messages (tests and the
	// pseudo-locale read them).
	files map[string]*goi18n.MessageFile
	// self is each language's own name ("Deutsch"), for the picker.
	self map[string]string
	// loc caches one Localizer per language.
	loc map[string]*Localizer
}

// Load returns the embedded catalogue, parsed once: the locale files are
// program data like the page templates (a broken file fails the first
// Load, which cmd calls at start-up, and every test).
func Load() (*Bundle, error) { return loadOnce() }

var loadOnce = sync.OnceValues(func() (*Bundle, error) { return parseLocales(localeFS, "locales") })

// MustLoad is Load for callers that cannot fail (the mail renderer's
// English default); the catalogue's tests make sure it does not panic.
func MustLoad() *Bundle {
	b, err := Load()
	if err != nil {
		panic(err)
	}
	return b
}

// Languages are the languages of the embedded catalogue (BCP 47 tags,
// English first): what discovery advertises and config accepts.
func Languages() []string {
	b, err := Load()
	if err != nil {
		return []string{English}
	}
	return slices.Clone(b.langs)
}

// Supported reports whether lang is one of Languages (exactly, as written
// there).
func Supported(lang string) bool { return slices.Contains(Languages(), lang) }

// parse reads dir/*.toml of fsys: one file per language, named by its tag.
func parseLocales(fsys fs.FS, dir string) (*Bundle, error) {
	b := &Bundle{b: goi18n.NewBundle(language.English), files: map[string]*goi18n.MessageFile{},
		self: map[string]string{}, loc: map[string]*Localizer{}}
	b.b.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	names, err := fs.Glob(fsys, dir+"/*.toml")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		buf, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		tag := strings.TrimSuffix(path.Base(name), ".toml")
		t, err := language.Parse(tag)
		if err != nil || t.String() != tag {
			return nil, fmt.Errorf("i18n: %s: the file name must be a canonical BCP 47 tag (%v)", name, t)
		}
		if tag == Pseudo {
			return nil, fmt.Errorf("i18n: %s: %s is generated from English, not a file", name, Pseudo)
		}
		mf, err := b.b.ParseMessageFileBytes(buf, name)
		if err != nil {
			return nil, fmt.Errorf("i18n: %s: %w", name, err)
		}
		b.files[tag] = mf
		b.langs = append(b.langs, tag)
	}
	if b.files[English] == nil {
		return nil, errors.New("i18n: no English catalogue (locales/en.toml)")
	}
	slices.SortFunc(b.langs, func(x, y string) int {
		switch {
		case x == English:
			return -1
		case y == English:
			return 1
		}
		return strings.Compare(x, y)
	})
	if err := b.b.AddMessages(language.MustParse(Pseudo), pseudoMessages(b.files[English].Messages)...); err != nil {
		return nil, err
	}
	for _, l := range append(slices.Clone(b.langs), Pseudo) {
		b.loc[l] = newLocalizer(b, l)
	}
	for _, l := range b.langs {
		b.self[l] = b.loc[l].T("language.self")
	}
	return b, nil
}

// Languages are the bundle's languages (not the pseudo-locale), English
// first.
func (b *Bundle) Languages() []string { return slices.Clone(b.langs) }

// SelfName is a language's name in itself ("Deutsch"), from its own
// catalogue; "" for a language the bundle does not have.
func (b *Bundle) SelfName(lang string) string { return b.self[lang] }

// Localizer speaks lang, which must be one of the bundle's languages or
// Pseudo; anything else gets English.
func (b *Bundle) Localizer(lang string) *Localizer {
	if l, ok := b.loc[lang]; ok {
		return l
	}
	return b.loc[English]
}

// MessageFile is the parsed file of one language (nil if there is none):
// the catalogue's tests compare them.
func (b *Bundle) MessageFile(lang string) *goi18n.MessageFile { return b.files[lang] }
