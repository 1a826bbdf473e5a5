package account

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/internal/web"
	"github.com/latchkey/latchkey/op"
	"github.com/latchkey/latchkey/storage"
)

// The account API for products (SPEC 7): GET and PUT /api/v1/me/privacy,
// authorised by the user's access token (RFC 6750 §2.1, Authorization
// header only) carrying the privacy scope. It is JSON in and out, errors
// included; it uses no cookies, so it needs no CSRF token.

const maxPrivacyBody = 1 << 10

// privacyAPI serves /api/v1/me/privacy (every method: a wrong one gets a
// JSON 405, not the HTML error page).
func (h *Handler) privacyAPI(c echo.Context) error {
	r := c.Request()
	c.Response().Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodPut {
		c.Response().Header().Set("Allow", "GET, PUT")
		return apiError(c, http.StatusMethodNotAllowed, "invalid_request", "use GET or PUT")
	}
	// The OP checks the token, Bearer or DPoP-bound, and writes the
	// challenge (RFC 6750 §3, RFC 9449 §7.1).
	info, rerr := h.op.AuthenticateResource(r)
	if rerr != nil {
		rerr.SetHeaders(c.Response().Header())
		desc := rerr.Description
		if rerr.Code == "" {
			desc = "send the user's access token: Authorization: Bearer <token> (or DPoP with a proof)"
		}
		return apiError(c, rerr.Status, cmp.Or(rerr.Code, "invalid_token"), desc)
	}
	ctx := r.Context()
	if !slices.Contains(info.Scopes, op.ScopePrivacy) {
		c.Response().Header().Set("WWW-Authenticate", info.Scheme+` realm="`+h.web.Issuer()+`", error="insufficient_scope", scope="privacy"`)
		return apiError(c, http.StatusForbidden, "insufficient_scope", "the access token lacks the privacy scope")
	}
	u, err := h.store.GetUser(ctx, info.Subject)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return h.invalidToken(c)
		}
		return err
	}
	if r.Method == http.MethodPut {
		pi, po, msg, status := readPrivacyBody(c)
		if msg != "" {
			return apiError(c, status, "invalid_request", msg)
		}
		if u, err = h.setPrivacy(ctx, c, u.ID, pi, po, info.ClientID); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return h.invalidToken(c)
			}
			return err
		}
	}
	return c.JSON(http.StatusOK, op.PrivacyClaim(u))
}

func (h *Handler) invalidToken(c echo.Context) error {
	c.Response().Header().Set("WWW-Authenticate", `Bearer realm="`+h.web.Issuer()+`", error="invalid_token"`)
	return apiError(c, http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
}

func apiError(c echo.Context, status int, code, desc string) error {
	return c.JSON(status, map[string]string{"error": code, "error_description": desc})
}

// readPrivacyBody parses {"product_improvement": bool, "personalised_offers":
// bool}, both optional, nothing else: exact keys, real booleans (not null),
// one JSON object, at most 1 KiB. It returns a message and status on error.
func readPrivacyBody(c echo.Context) (pi, po *bool, msg string, status int) {
	r := c.Request()
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, nil, "send a JSON body (Content-Type: application/json)", http.StatusUnsupportedMediaType
		}
	} else {
		return nil, nil, "send a JSON body (Content-Type: application/json)", http.StatusUnsupportedMediaType
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, maxPrivacyBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, "the body is larger than 1 KiB", http.StatusRequestEntityTooLarge
		}
		return nil, nil, "the body could not be read", http.StatusBadRequest
	}
	bad := func(m string) (*bool, *bool, string, int) { return nil, nil, m, http.StatusBadRequest }
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return bad("the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		return bad("the body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("the body must be one JSON object")
	}
	for k, raw := range fields {
		var dst **bool
		switch k {
		case "product_improvement":
			dst = &pi
		case "personalised_offers":
			dst = &po
		default:
			return bad("unknown field " + strings.ToValidUTF8(web.Truncate(k, 64), "") + ": only product_improvement and personalised_offers can be set")
		}
		var b bool
		if t := bytes.TrimSpace(raw); bytes.Equal(t, []byte("null")) || json.Unmarshal(t, &b) != nil {
			return bad(k + " must be true or false")
		}
		*dst = &b
	}
	return pi, po, "", 0
}
