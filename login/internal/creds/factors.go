package creds

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey/latchkey/login/factor"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/keyring"
)

// --- authenticator app (TOTP) ---

// pendingTOTPReuse: a set-up page reloaded within this time shows the
// same seed (the user may be scanning it).
const pendingTOTPReuse = 15 * time.Minute

// ActiveTOTP is the user's active authenticator (zero ID: none).
func (s *Service) ActiveTOTP(ctx context.Context, userID string) (storage.TOTPCredential, error) {
	creds, err := s.store.ListTOTP(ctx, userID)
	if err != nil {
		return storage.TOTPCredential{}, err
	}
	for _, cr := range creds {
		if cr.Status == storage.TOTPActive {
			return cr, nil
		}
	}
	return storage.TOTPCredential{}, nil
}

// VerifyTOTP checks an authenticator code against the active credential,
// consuming its time step in the same UPDATE that checks it (a step is
// never accepted twice).
func (s *Service) VerifyTOTP(ctx context.Context, userID, input string) (bool, error) {
	cr, err := s.ActiveTOTP(ctx, userID)
	if err != nil || cr.ID == "" {
		return false, err
	}
	seed, err := s.kr.Open(cr.SeedSealed, totpAD(cr.ID))
	if err != nil {
		return false, err
	}
	step, ok := s.verify.TOTP(seed, input, s.now(), cr.LastStep)
	if !ok {
		return false, nil
	}
	if err := s.store.AcceptTOTPStep(ctx, cr.ID, step); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return false, nil // replayed
		}
		return false, err
	}
	return true, nil
}

func totpAD(credID string) []byte { return []byte("totp-seed:" + credID) }

// TOTPSetup is an authenticator being set up: a pending seed.
type TOTPSetup struct {
	Cred   storage.TOTPCredential
	Update bool // an active authenticator exists and keeps working until this one is confirmed
}

// PendingTOTP returns the set-up in progress, or starts one: a pending
// seed reused for pendingTOTPReuse so a reload shows the same QR code.
func (s *Service) PendingTOTP(ctx context.Context, userID string) (TOTPSetup, error) {
	now := s.now()
	creds, err := s.store.ListTOTP(ctx, userID)
	if err != nil {
		return TOTPSetup{}, err
	}
	var st TOTPSetup
	for _, cr := range creds {
		switch cr.Status {
		case storage.TOTPActive:
			st.Update = true
		case storage.TOTPPending:
			if st.Cred.ID == "" && now.Sub(cr.CreatedAt) < pendingTOTPReuse && !cr.CreatedAt.After(now) {
				st.Cred = cr
			}
		}
	}
	if st.Cred.ID != "" {
		return st, nil
	}
	if err := s.store.DeleteTOTP(ctx, userID, storage.TOTPPending); err != nil {
		return TOTPSetup{}, err
	}
	id := storage.NewID() // the id is the seed's associated data: known before sealing
	st.Cred, err = s.store.CreateTOTP(ctx, storage.TOTPCredential{
		ID: id, UserID: userID, SeedSealed: s.kr.Seal(factor.NewTOTPSeed(), totpAD(id)), Status: storage.TOTPPending, CreatedAt: now,
	})
	return st, err
}

// FindPendingTOTP returns the pending set-up with this id (zero Cred.ID
// when there is none).
func (s *Service) FindPendingTOTP(ctx context.Context, userID, id string) (TOTPSetup, error) {
	creds, err := s.store.ListTOTP(ctx, userID)
	if err != nil {
		return TOTPSetup{}, err
	}
	var st TOTPSetup
	for _, cr := range creds {
		switch {
		case cr.Status == storage.TOTPActive:
			st.Update = true
		case cr.Status == storage.TOTPPending && cr.ID == id:
			st.Cred = cr
		}
	}
	return st, nil
}

// TOTPKey is what the set-up page shows: the otpauth:// URI as a QR code
// (PNG) and the key as text for manual entry.
type TOTPKey struct {
	URI  string
	Text string
	PNG  []byte
}

// Key renders a pending credential for the set-up page.
func (s *Service) Key(cr storage.TOTPCredential, account string, qrSize int) (TOTPKey, error) {
	seed, err := s.kr.Open(cr.SeedSealed, totpAD(cr.ID))
	if err != nil {
		return TOTPKey{}, err
	}
	uri := factor.TOTPKeyURI(s.cfg.TOTPIssuer, account, seed)
	png, err := factor.TOTPQRCodePNG(uri, qrSize)
	if err != nil {
		return TOTPKey{}, err
	}
	return TOTPKey{URI: uri, Text: factor.TOTPSecretText(seed), PNG: png}, nil
}

// TOTPIssuer is the label authenticator apps show.
func (s *Service) TOTPIssuer() string { return s.cfg.TOTPIssuer }

// ConfirmTOTP checks a code from the pending seed; a valid one makes it
// the user's active authenticator (and deletes the old one) in one
// transaction. ok is false for a wrong code; storage.ErrNotFound when the
// pending credential is gone.
func (s *Service) ConfirmTOTP(ctx context.Context, userID string, pending storage.TOTPCredential, input string) (bool, error) {
	now := s.now()
	seed, err := s.kr.Open(pending.SeedSealed, totpAD(pending.ID))
	if err != nil {
		return false, err
	}
	step, ok := s.verify.TOTP(seed, input, now, pending.LastStep)
	if !ok {
		return false, nil
	}
	return true, s.store.ActivateTOTP(ctx, userID, pending.ID, step, now)
}

// DisableTOTP removes every authenticator of the user.
func (s *Service) DisableTOTP(ctx context.Context, userID string) error {
	return s.store.DeleteTOTP(ctx, userID, "")
}

// --- backup codes ---

func backupAD(userID string) []byte { return []byte("backup-code:" + userID) }

// UseBackupCode burns the user's backup code if input matches and puts a
// new one in its place, written together with where its display copy
// goes: the sign-in authRequestID shows it once, or (authRequestID "")
// the user's next sign-in makes and shows a fresh one.
func (s *Service) UseBackupCode(ctx context.Context, userID, input, authRequestID string) (bool, error) {
	canonical, ok := factor.NormalizeBackupCode(input)
	if !ok {
		return false, nil
	}
	cur, err := s.store.GetBackupCode(ctx, userID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	if !s.verify.Digest(cur.CodeHash, s.kr.MACString(keyring.PurposeBackupCode, canonical)) {
		return false, nil
	}
	next := newBackupCode()
	show := storage.BackupCodeShow{NextSignin: true}
	if authRequestID != "" {
		show = storage.BackupCodeShow{AuthRequestID: authRequestID, Sealed: s.kr.Seal([]byte(next), backupAD(userID))}
	}
	err = s.store.ReplaceBackupCode(ctx, userID, cur.CodeHash,
		storage.BackupCode{UserID: userID, CodeHash: s.kr.MACString(keyring.PurposeBackupCode, next), CreatedAt: s.now()}, show)
	if errors.Is(err, storage.ErrConflict) {
		return false, nil // used concurrently
	}
	return err == nil, err
}

// newBackupCode makes a code and returns its canonical form.
func newBackupCode() string {
	canonical, _ := factor.NormalizeBackupCode(factor.NewBackupCode())
	return canonical
}

// FirstBackupCode makes the user's first backup code, shown once by the
// sign-in authRequestID (code and display copy in one transaction).
func (s *Service) FirstBackupCode(ctx context.Context, userID, authRequestID string) error {
	next := newBackupCode()
	return s.store.SetBackupCode(ctx,
		storage.BackupCode{UserID: userID, CodeHash: s.kr.MACString(keyring.PurposeBackupCode, next), CreatedAt: s.now()},
		storage.BackupCodeShow{AuthRequestID: authRequestID, Sealed: s.kr.Seal([]byte(next), backupAD(userID))})
}

// OpenShownBackupCode opens the display copy a sign-in holds.
func (s *Service) OpenShownBackupCode(userID string, sealed []byte) (string, error) {
	canon, err := s.kr.Open(sealed, backupAD(userID))
	return string(canon), err
}

// GenerateBackupCode replaces the user's backup code with a new one and
// returns it (canonical) with its display copy sealed for this user (the
// account page keeps it in a cookie until "I saved my backup code").
func (s *Service) GenerateBackupCode(ctx context.Context, userID string) (canonical string, sealed []byte, err error) {
	next := newBackupCode()
	if err := s.store.SetBackupCode(ctx,
		storage.BackupCode{UserID: userID, CodeHash: s.kr.MACString(keyring.PurposeBackupCode, next), CreatedAt: s.now()},
		storage.BackupCodeShow{}); err != nil {
		return "", nil, err
	}
	return next, s.kr.Seal([]byte(next), backupShowAD(userID)), nil
}

func backupShowAD(userID string) []byte { return []byte("backup-show:" + userID) }

// CurrentBackupCode opens a display copy made by GenerateBackupCode and
// returns it if it still is the user's code ("" when it was replaced or
// used since, or does not open).
func (s *Service) CurrentBackupCode(ctx context.Context, userID string, sealed []byte) (string, error) {
	canon, err := s.kr.Open(sealed, backupShowAD(userID))
	if err != nil {
		return "", nil
	}
	cur, err := s.store.GetBackupCode(ctx, userID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return "", nil
		}
		return "", err
	}
	if !factor.Equal(cur.CodeHash, s.kr.MACString(keyring.PurposeBackupCode, string(canon))) {
		return "", nil
	}
	return string(canon), nil
}

// BackupCodeCreatedAt is when the user's backup code was made (zero: none).
func (s *Service) BackupCodeCreatedAt(ctx context.Context, userID string) (time.Time, error) {
	bc, err := s.store.GetBackupCode(ctx, userID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return time.Time{}, err
	}
	return bc.CreatedAt, nil
}

// --- device user codes (RFC 8628) ---

// MaxUserCodeGuesses: wrong guesses that share a device authorization's
// first half (someone who saw part of the code) before it is out of
// reach.
const MaxUserCodeGuesses = 5

// FindDeviceAuthorization finds the pending, live device authorization
// whose user code is typed (any case, dash optional). The guess is
// counted against the authorizations it could aim at (storage
// .GuessDeviceUserCode, one statement) before the full code is compared;
// the caller has taken the throttle's attempt (DeviceLimits) before.
func (s *Service) FindDeviceAuthorization(ctx context.Context, typed string) (storage.DeviceAuthorization, bool, error) {
	code, ok := factor.NormalizeUserCode(typed)
	if !ok {
		return storage.DeviceAuthorization{}, false, nil
	}
	full, half := s.kr.UserCodeDigests(code)
	cands, err := s.store.GuessDeviceUserCode(ctx, half, s.now(), MaxUserCodeGuesses)
	if err != nil {
		return storage.DeviceAuthorization{}, false, err
	}
	for _, d := range cands {
		if s.verify.Digest(d.UserCodeHash, full) {
			return d, true, nil
		}
	}
	return storage.DeviceAuthorization{}, false, nil
}
