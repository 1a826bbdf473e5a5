package bench

import (
	"bytes"
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlForm is one <form> of a page, as a browser would submit it.
type htmlForm struct {
	Action string // as written (resolve against the page URL)
	Method string // lower case; "get" when absent
	Fields []formField
}

// formField is an <input>, or a <button> with a name.
type formField struct {
	Name, Value, Type string // Type lower case: "hidden", "email", "submit", …
	Button            bool
	Checked           bool
}

// page is what the bench reads of an HTML page.
type page struct {
	Forms []htmlForm
	Alert string // text of the first role="alert" element (an error message), if any
}

// parsePage tokenizes an HTML page and collects its forms and its first
// alert. It never fails: malformed HTML yields what could be read.
func parsePage(body []byte) page {
	var p page
	z := html.NewTokenizer(bytes.NewReader(body))
	var cur *htmlForm
	alertDepth := 0 // > 0 while inside the alert element
	var alert strings.Builder
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken: // io.EOF, or malformed input: keep what was read
			if cur != nil {
				p.Forms = append(p.Forms, *cur)
			}
			p.Alert = strings.Join(strings.Fields(alert.String()), " ")
			return p
		case html.TextToken:
			if alertDepth > 0 {
				alert.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			var attrs map[string]string
			if hasAttr {
				attrs = map[string]string{}
				for {
					k, v, more := z.TagAttr()
					key := string(k)
					if _, dup := attrs[key]; !dup { // the first of duplicate attributes wins, as in browsers
						attrs[key] = string(v)
					}
					if !more {
						break
					}
				}
			}
			if alertDepth > 0 && tt == html.StartTagToken && !voidElement(a) {
				alertDepth++
			} else if p.Alert == "" && alert.Len() == 0 && attrs["role"] == "alert" && tt == html.StartTagToken {
				alertDepth = 1
			}
			switch a {
			case atom.Form:
				if cur != nil { // forms do not nest: an unclosed one ends here
					p.Forms = append(p.Forms, *cur)
				}
				m := strings.ToLower(strings.TrimSpace(attrs["method"]))
				if m == "" {
					m = "get"
				}
				cur = &htmlForm{Action: attrs["action"], Method: m}
			case atom.Input:
				if cur == nil {
					continue
				}
				_, checked := attrs["checked"]
				t := strings.ToLower(strings.TrimSpace(attrs["type"]))
				if t == "" {
					t = "text"
				}
				cur.Fields = append(cur.Fields, formField{Name: attrs["name"], Value: attrs["value"], Type: t, Checked: checked})
			case atom.Button:
				if cur == nil || attrs["name"] == "" {
					continue
				}
				t := strings.ToLower(strings.TrimSpace(attrs["type"]))
				if t == "" {
					t = "submit"
				}
				cur.Fields = append(cur.Fields, formField{Name: attrs["name"], Value: attrs["value"], Type: t, Button: true})
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if alertDepth > 0 {
				alertDepth--
			}
			if atom.Lookup(name) == atom.Form && cur != nil {
				p.Forms = append(p.Forms, *cur)
				cur = nil
			}
		}
	}
}

func voidElement(a atom.Atom) bool {
	switch a {
	case atom.Input, atom.Br, atom.Img, atom.Meta, atom.Link, atom.Hr, atom.Wbr, atom.Source, atom.Area, atom.Col, atom.Embed:
		return true
	}
	return false
}

// has reports how a form offers a field named name: 2 when the user
// fills or chooses it (a visible input, a checkbox, a button), 1 when it
// is hidden, 0 when absent.
func (f htmlForm) has(name string) int {
	best := 0
	for _, x := range f.Fields {
		if x.Name != name {
			continue
		}
		if x.Type == "hidden" {
			best = max(best, 1)
		} else {
			best = 2
		}
	}
	return best
}

// values is what submitting the form sends: its inputs with their
// values (hidden ones included; unchecked boxes, and buttons, left out),
// then fill replacing whatever fields it names — as a user typing into
// the page and pressing the button named in fill.
func (f htmlForm) values(fill url.Values) url.Values {
	v := url.Values{}
	for _, x := range f.Fields {
		if x.Name == "" || x.Button {
			continue
		}
		switch x.Type {
		case "submit", "button", "image", "reset", "file":
			continue
		case "checkbox", "radio":
			if !x.Checked {
				continue
			}
		}
		v.Add(x.Name, x.Value)
	}
	for k, vals := range fill {
		v[k] = vals
	}
	return v
}

// pickForm chooses the POST form a user would submit on the page at
// pagePath to fill the fields in fill: its action goes back to the same
// path, and it offers those fields (visible ones preferred over hidden).
// It returns false when no POST form offers any of them.
func pickForm(forms []htmlForm, pageURL *url.URL, fill url.Values) (htmlForm, *url.URL, bool) {
	bestScore, best := 0, -1
	var bestURL *url.URL
	for i, f := range forms {
		if f.Method != "post" {
			continue
		}
		action, err := pageURL.Parse(f.Action)
		if err != nil {
			continue
		}
		offered := 0
		for k := range fill {
			offered += f.has(k)
		}
		if offered == 0 {
			continue
		}
		score := offered
		if action.Path == pageURL.Path {
			score += 4
		}
		if score > bestScore {
			bestScore, best, bestURL = score, i, action
		}
	}
	if best < 0 {
		return htmlForm{}, nil, false
	}
	return forms[best], bestURL, true
}
