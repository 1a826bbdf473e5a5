package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// RevokeCause is why a user's grants end. Each cause ends a fixed set of
// grants; this table is the one place that rule is written (SPEC 2, 3,
// 3b, 4), and RevokeUserGrants applies it in one transaction:
//
//	cause                    sessions         refresh tokens              trusted devices       authenticator, backup code, passkeys
//	RevokePasswordChanged    all but Keep     all but Keep's sessions'    all                   kept
//	RevokeSecondStepChanged  all but Keep     all but Keep's sessions'    all                   kept (the change is the caller's)
//	RevokeSignOutOthers      all but Keep     all but Keep's sessions'    all but Keep.Device   kept
//	RevokePasswordReset      all              all                         all                   kept
//	RevokeSSOConversion      all              all                         all                   removed
//	RevokeAccountReplaced    all              all                         all                   removed
//	RevokeUserDisabled       all              all                         all                   kept
//	RevokeSecondStepReset    all              all                         all                   removed
//	RevokeAdminSignOut       all              all                         all                   kept
//	RevokeUserDeleted        all              all                         all                   removed, and the user
//
// RevokeSecondStepReset is an administrator's "reset 2-step" for a user
// who lost their phone: the next sign-in uses email codes.
// RevokeAdminSignOut is an administrator's "sign out everywhere".
// RevokeUserDeleted also deletes the user row and everything else that
// is theirs (access tokens, email codes, one-time links, links to an
// organisation's identities); the audit trail keeps their history.
//
// "Keep" is the browser that made the change (Keep.SessionIDs: its
// session and the earlier sessions of the same browser that a
// reconfirmation replaced, whose products keep their refresh tokens;
// Keep.DeviceID: its trusted-device record). Causes that end "all" ignore
// Keep. Access tokens of a revoked refresh family go with it; opaque
// access tokens issued without a refresh token expire on their own (15
// minutes by default).
type RevokeCause string

// Causes, see RevokeCause.
const (
	RevokePasswordChanged   RevokeCause = "password_changed"
	RevokeSecondStepChanged RevokeCause = "second_step_changed"
	RevokeSignOutOthers     RevokeCause = "sign_out_others"
	RevokePasswordReset     RevokeCause = "password_reset"
	RevokeSSOConversion     RevokeCause = "sso_conversion"
	RevokeAccountReplaced   RevokeCause = "account_replaced"
	RevokeUserDisabled      RevokeCause = "user_disabled"
	RevokeSecondStepReset   RevokeCause = "second_step_reset"
	RevokeAdminSignOut      RevokeCause = "admin_sign_out"
	RevokeUserDeleted       RevokeCause = "user_deleted"
)

// revokeRule is one row of the table above.
type revokeRule struct {
	keepBrowser bool // sessions/refresh tokens of Keep survive
	keepDevice  bool // Keep.DeviceID survives
	factors     bool // authenticator, backup code and passkeys go too
	deleteUser  bool // the user row and all that is theirs go too
}

var revokeRules = map[RevokeCause]revokeRule{
	RevokePasswordChanged:   {keepBrowser: true},
	RevokeSecondStepChanged: {keepBrowser: true},
	RevokeSignOutOthers:     {keepBrowser: true, keepDevice: true},
	RevokePasswordReset:     {},
	RevokeSSOConversion:     {factors: true},
	RevokeAccountReplaced:   {factors: true},
	RevokeUserDisabled:      {},
	RevokeSecondStepReset:   {factors: true},
	RevokeAdminSignOut:      {},
	RevokeUserDeleted:       {factors: true, deleteUser: true},
}

// Revocation is one RevokeUserGrants call.
type Revocation struct {
	Cause RevokeCause
	Keep  Keep
	// User, when set, changes the user's row in the same transaction (a
	// new password, disabled, converted to SSO, replaced): the change and
	// what it revokes commit together or not at all. An error from it
	// aborts everything and is returned unchanged.
	User func(*User) error
	// Mail, when set, is written to the outbox in the same transaction
	// (the change's notice: it goes out if and only if the change stands).
	Mail []OutboxMessage
}

// Keep names what of the acting browser survives a revocation (see
// RevokeCause).
type Keep struct {
	SessionIDs []string
	DeviceID   string
}

// Revoked says what a revocation ended.
type Revoked struct {
	// SessionIDs are the browser sessions that were deleted.
	SessionIDs []string
}

// RevokeUserGrants ends the user's grants as the cause's row of the table
// on RevokeCause says, with r.User's change of the user row, in one
// transaction: either everything listed goes, or nothing does.
// ErrNotFound if r.User is set, or the cause deletes the user, and the
// user does not exist.
func (s *Store) RevokeUserGrants(ctx context.Context, userID string, r Revocation, now time.Time) (Revoked, error) {
	rule, ok := revokeRules[r.Cause]
	if !ok || userID == "" {
		return Revoked{}, invalid(fmt.Sprintf("revoke user grants: user %q, cause %q", userID, r.Cause))
	}
	keep := r.Keep
	var kept []string
	if rule.keepBrowser {
		for _, id := range keep.SessionIDs {
			if id != "" {
				kept = append(kept, id)
			}
		}
	}
	var out Revoked
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if r.User != nil {
			if _, err := updateRowTx(s, tx, "id = ?", []any{userID}, noErr(userRow.domain), userToRow, r.User,
				func(old User, v *User) { v.ID = old.ID }); err != nil {
				return err
			}
		}
		// Sessions.
		q, args := "DELETE FROM sessions WHERE user_id = ?", []any{userID}
		if len(kept) > 0 {
			q += " AND id NOT IN (" + placeholders(len(kept)) + ")"
			args = append(args, anys(kept)...)
		}
		if err := tx.Raw(q+" RETURNING id", args...).Scan(&out.SessionIDs).Error; err != nil {
			return err
		}
		// Refresh-token families (and their access tokens).
		fam, fargs := refreshFamiliesWhere+"user_id = ?", []any{userID}
		if len(kept) > 0 {
			fam += " AND session_id NOT IN (" + placeholders(len(kept)) + ")"
			fargs = append(fargs, anys(kept)...)
		}
		if err := revokeLoop(tx, revokeFamiliesIn+"("+fam+")",
			append([]any{usedMs(now)}, fargs...)...); err != nil {
			return err
		}
		if err := tx.Exec("DELETE FROM access_tokens WHERE family_id IN ("+fam+")", fargs...).Error; err != nil {
			return err
		}
		// Trusted devices.
		dq := tx.Where("user_id = ?", userID)
		if rule.keepDevice && keep.DeviceID != "" {
			dq = dq.Where("id <> ?", keep.DeviceID)
		}
		if err := dq.Delete(&trustedDeviceRow{}).Error; err != nil {
			return err
		}
		for _, m := range r.Mail {
			if err := tx.Exec(outboxInsert, outboxToRow(outboxDefaults(m)).values()...).Error; err != nil {
				return err
			}
		}
		if !rule.factors {
			return nil
		}
		if err := tx.Where("user_id = ?", userID).Delete(&totpRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("user_id = ?", userID).Delete(&passkeyRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("user_id = ?", userID).Delete(&backupCodeRow{}).Error; err != nil {
			return err
		}
		if !rule.deleteUser {
			return nil
		}
		// The user's refresh tokens by their families (refresh_tokens has
		// no user index), then the families.
		if err := tx.Exec("DELETE FROM refresh_tokens WHERE family_id IN ("+refreshFamiliesWhere+"user_id = ?)", userID).Error; err != nil {
			return err
		}
		for _, table := range []string{"access_tokens", "refresh_families", "email_codes", "action_tokens", "federated_identities"} {
			if err := tx.Exec("DELETE FROM "+table+" WHERE user_id = ?", userID).Error; err != nil {
				return err
			}
		}
		res := tx.Where("id = ?", userID).Delete(&userRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		return nil
	})
	if err != nil {
		return Revoked{}, fail("revoke user grants", err)
	}
	return out, nil
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func anys(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}
