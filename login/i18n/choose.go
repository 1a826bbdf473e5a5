package i18n

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/text/language"
)

// Prefs are what a request says about the language to use, in the order
// they count (SPEC 12, issue 14):
//
//  1. UILocales: the product's ui_locales (OIDC Core 3.1.2.1), stored on
//     the sign-in, first supported one wins;
//  2. Account: the language saved on the account (the account pages set
//     it; sign-up captures the browser's);
//  3. Accept: the browser's Accept-Language header, by its q-values;
//  4. then the configured default language.
type Prefs struct {
	UILocales []string
	Account   string
	Accept    string
}

// Chooser picks a language from Prefs among the bundle's languages. It
// holds configuration only (the default, whether the pseudo-locale is
// offered).
type Chooser struct {
	b      *Bundle
	def    string
	pseudo bool
}

// NewChooser makes a Chooser; def "" is English. pseudo offers Pseudo
// (en-XA), when a preference names it exactly: tests and translators use
// it, real browsers never send it.
func NewChooser(b *Bundle, def string, pseudo bool) (*Chooser, error) {
	if def == "" {
		def = English
	}
	if !slices.Contains(b.langs, def) {
		return nil, fmt.Errorf("i18n: default language %q is not one of %s", def, strings.Join(b.langs, ", "))
	}
	return &Chooser{b: b, def: def, pseudo: pseudo}, nil
}

// Bundle is the chooser's catalogue.
func (c *Chooser) Bundle() *Bundle { return c.b }

// Default is the configured default language.
func (c *Chooser) Default() string { return c.def }

// Choose is the language for p (always one of the bundle's languages, or
// Pseudo when offered).
func (c *Chooser) Choose(p Prefs) string {
	for _, l := range p.UILocales {
		if m := c.Match(l); m != "" {
			return m
		}
	}
	if m := c.Match(p.Account); m != "" {
		return m
	}
	if m := c.MatchAccept(p.Accept); m != "" {
		return m
	}
	return c.def
}

// Localizer is Localizer(Choose(p)).
func (c *Chooser) Localizer(p Prefs) *Localizer { return c.b.Localizer(c.Choose(p)) }

// Match maps one language tag to a supported language: the language
// itself ("de"), or its base language ("de-AT", "de-CH" → "de"; "zh-Hant"
// → none unless "zh-Hant" is supported). "" when none fits or the tag is
// not a tag.
func (c *Chooser) Match(tag string) string {
	tag = strings.TrimSpace(tag)
	if tag == "" || len(tag) > 35 {
		return ""
	}
	t, err := language.Parse(tag)
	if err != nil {
		return ""
	}
	if t.String() == Pseudo {
		if c.pseudo {
			return Pseudo
		}
		return ""
	}
	if s := t.String(); slices.Contains(c.b.langs, s) {
		return s
	}
	// Regions and variants fall back to their language; scripts do not
	// (zh-Hant is not zh-Hans).
	base, conf := t.Base()
	if conf == language.No {
		return ""
	}
	if script, sc := t.Script(); sc == language.Exact {
		if with := base.String() + "-" + script.String(); slices.Contains(c.b.langs, with) {
			return with
		}
		if dflt, _ := language.Make(base.String()).Script(); dflt != script {
			return ""
		}
	}
	if s := base.String(); slices.Contains(c.b.langs, s) {
		return s
	}
	return ""
}

// MatchAccept is the first language of an Accept-Language header (by
// q-value, q=0 excluded) that Match maps; "" if none.
func (c *Chooser) MatchAccept(header string) string {
	if header == "" || len(header) > 1024 {
		return ""
	}
	tags, qs, err := language.ParseAcceptLanguage(header)
	if err != nil {
		return ""
	}
	for i, t := range tags {
		if qs[i] <= 0 {
			continue
		}
		if m := c.Match(t.String()); m != "" {
			return m
		}
	}
	return ""
}

// SplitUILocales splits an OIDC ui_locales value (space-separated tags,
// preferred first).
func SplitUILocales(v string) []string { return strings.Fields(v) }

// Offered are the languages pages and mails can be in: the bundle's, and
// Pseudo when offered.
func (c *Chooser) Offered() []string {
	out := c.b.Languages()
	if c.pseudo {
		out = append(out, Pseudo)
	}
	return out
}
