// Package feed is the catalogue's change feed: every create, update and
// delete, in commit order, resumable from an opaque token, built on the
// movie documents' own update_time and revision so it works on every
// MongoDB-compatible engine (FerretDB has no change streams).
//
// # Why a write that commits late is never skipped
//
// Every write stamps update_time before it commits, so a slow write can
// become visible after a reader has already read past its update_time. Two
// rules close that gap:
//
//  1. A write never commits more than the settle window after its stamp.
//     The service gives each write a deadline of half the window (the driver
//     turns it into maxTimeMS, so the server abandons rather than applies a
//     late write); the other half absorbs clock skew between replicas. A
//     document's update_time also only grows (a new revision is stamped at
//     least 1 ms after the previous one), so re-stamping by a replica whose
//     clock lags cannot move a document backwards past a reader.
//  2. A reader's position H = (update_time, _id) only advances over changes
//     that are settled: stamped at or before now - settle. Everything at or
//     before H has been delivered, and by rule 1 nothing new can appear
//     there.
//
// Changes newer than the settled horizon (the unsettled tail) are delivered
// at once for freshness, and the token remembers them: it holds H plus the
// set of (id, revision, update_time) delivered beyond H. The next read scans
// from H again, skips what the set says was delivered, delivers anything new
// (including a write that committed late inside the window), and moves H as
// far as the settled, delivered prefix reaches. The set is bounded (MaxTail);
// when it is full, newer changes wait until they settle. A reader that is
// caught up moves H to now - settle, so an idle tailer's token stays fresh.
//
// The feed is read from the primary: a lagging secondary would make writes
// visible later than the window allows.
//
// # Retention
//
// Deleting leaves a tombstone, which Purge removes once delete_time is older
// than the retention. A position older than the retention fails with
// ErrPositionExpired: tombstones it would need may be gone, so the reader
// must resynchronise from the export.
package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
)

// ErrPositionExpired means a position is older than the retention.
var ErrPositionExpired = errors.New("change feed position expired")

// Position is a place in the (update_time, _id) order: every change at or
// before it has been delivered. ID "" means every id at T.
type Position struct {
	T  int64 // unix milliseconds
	ID string
}

// Change is one entry: the current revision of a movie or tombstone.
type Change struct {
	ID         string
	Revision   int64
	UpdateTime time.Time
	Deleted    bool
}

// Source reads the movies collection in feed order.
type Source interface {
	// ChangesAfter returns up to limit documents whose (update_time, _id)
	// follows pos, in that order.
	ChangesAfter(ctx context.Context, pos Position, limit int) ([]Change, error)
	// PurgeTombstones deletes tombstones deleted before before.
	PurgeTombstones(ctx context.Context, before time.Time) (int64, error)
}

// Config tunes the feed.
type Config struct {
	// Settle is the window within which every write commits (see the
	// package comment); writes get half of it as their deadline.
	Settle time.Duration
	// Retention is how long tombstones (and positions) live.
	Retention time.Duration
	// MaxTail bounds the unsettled changes a token remembers.
	MaxTail int
	// PollInterval is how often a tailer looks for writes made by other
	// replicas; local writes wake it at once.
	PollInterval time.Duration
	// Heartbeat is how often an idle tailer is sent a fresh position.
	Heartbeat time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Settle: 10 * time.Second, Retention: 720 * time.Hour, MaxTail: 64,
		PollInterval: time.Second, Heartbeat: time.Minute}
}

// Page sizes of ListMovieChanges.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Feed reads the change feed.
type Feed struct {
	src    Source
	tokens *movie.Tokens
	cfg    Config
	now    func() time.Time
	wake   *Notifier
	logger *slog.Logger
}

// Option configures a Feed.
type Option func(*Feed)

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(f *Feed) { f.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(f *Feed) { f.logger = l } }

// New returns a Feed. tokens signs feed tokens; wake is notified on local
// writes (may be nil).
func New(src Source, tokens *movie.Tokens, wake *Notifier, cfg Config, opts ...Option) *Feed {
	d := DefaultConfig()
	if cfg.Settle <= 0 {
		cfg.Settle = d.Settle
	}
	if cfg.Retention <= 0 {
		cfg.Retention = d.Retention
	}
	if cfg.MaxTail <= 0 {
		cfg.MaxTail = d.MaxTail
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = d.PollInterval
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = d.Heartbeat
	}
	if wake == nil {
		wake = NewNotifier()
	}
	f := &Feed{src: src, tokens: tokens, cfg: cfg, now: time.Now, wake: wake, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Config returns the effective configuration.
func (f *Feed) Config() Config { return f.cfg }

// delivered is an entry of the unsettled tail a token remembers.
type delivered struct {
	I string `json:"i"`
	R int64  `json:"r"`
	T int64  `json:"t"`
}

type token struct {
	T int64       `json:"t"`
	D string      `json:"d,omitempty"`
	S []delivered `json:"s,omitempty"`
	// N is when a token that starts before every change (T < 0) was first
	// issued: such a token expires a retention after that.
	N int64 `json:"n,omitempty"`
}

const purposeChanges = "changes"

func (f *Feed) encode(t token) (string, error) { return f.tokens.Seal(purposeChanges, "", t) }

func (f *Feed) decode(s string) (token, error) {
	var t token
	if err := f.tokens.Open(purposeChanges, "", s, &t); err != nil {
		return token{}, &movie.InvalidError{Reason: movie.ReasonInvalidPageToken, Message: "the page token is not a change-feed position",
			Violations: []movie.FieldViolation{{Field: "pageToken", Description: "not a change-feed position"}}}
	}
	return t, nil
}

// Now returns a token for the current moment, taken before a scan so that a
// reader resuming from it misses nothing the scan did not see: it starts a
// settle window back and may repeat a few changes, never skip one.
func (f *Feed) Now() (string, error) {
	return f.encode(token{T: f.now().Add(-f.cfg.Settle).UnixMilli()})
}

// List returns up to pageSize changes after pageToken (or, without one, at
// or after since; without either, from the oldest retained change) and the
// token to continue from, which is always set.
func (f *Feed) List(ctx context.Context, since time.Time, pageToken string, pageSize int) ([]Change, string, error) {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	if pageSize > MaxPageSize {
		pageSize = MaxPageSize
	}
	now := f.now()
	var tok token
	switch {
	case pageToken != "":
		var err error
		if tok, err = f.decode(pageToken); err != nil {
			return nil, "", err
		}
	case !since.IsZero():
		tok = token{T: since.UnixMilli() - 1}
	default:
		tok = token{T: -1, N: now.UnixMilli()}
	}
	ref := tok.T
	if ref < 0 {
		ref = tok.N
	}
	if ref < now.Add(-f.cfg.Retention).UnixMilli() {
		return nil, "", ErrPositionExpired
	}
	changes, next, err := f.read(ctx, tok, pageSize, now)
	if err != nil {
		return nil, "", err
	}
	s, err := f.encode(next)
	if err != nil {
		return nil, "", fmt.Errorf("encoding feed token: %w", err)
	}
	return changes, s, nil
}

func seenKey(id string, rev int64) string { return fmt.Sprintf("%s@%d", id, rev) }

// after reports whether (t, id) follows pos.
func after(pos Position, t int64, id string) bool {
	return t > pos.T || (t == pos.T && pos.ID != "" && id > pos.ID)
}

func (f *Feed) read(ctx context.Context, tok token, limit int, now time.Time) ([]Change, token, error) {
	pos := Position{T: tok.T, ID: tok.D}
	seen := make(map[string]bool, len(tok.S))
	for _, d := range tok.S {
		seen[seenKey(d.I, d.R)] = true
	}
	settledUntil := now.Add(-f.cfg.Settle).UnixMilli()
	scan := limit + len(tok.S) + 1
	rows, err := f.src.ChangesAfter(ctx, pos, scan)
	if err != nil {
		return nil, token{}, err
	}
	tail := append([]delivered(nil), tok.S...)
	var out []Change
	advancing := true
	stopped := false
	newPos := pos
	for _, c := range rows {
		t := c.UpdateTime.UnixMilli()
		settled := t <= settledUntil
		done := seen[seenKey(c.ID, c.Revision)]
		if !done {
			if len(out) >= limit || (!settled && len(tail) >= f.cfg.MaxTail) {
				stopped = true
				break
			}
			out = append(out, c)
			tail = append(tail, delivered{I: c.ID, R: c.Revision, T: t})
			done = true
		}
		if advancing && settled && done {
			newPos = Position{T: t, ID: c.ID}
		} else {
			advancing = false
		}
	}
	if advancing && !stopped && len(rows) < scan && (newPos.T < settledUntil || (newPos.T == settledUntil && newPos.ID != "")) {
		// Caught up: everything stamped up to the settled horizon has been
		// delivered and nothing more can appear there.
		newPos = Position{T: settledUntil}
	}
	next := token{T: newPos.T, D: newPos.ID}
	if next.T < 0 {
		next.N = tok.N
	}
	for _, d := range tail {
		if after(newPos, d.T, d.I) {
			next.S = append(next.S, d)
		}
	}
	return out, next, nil
}

// Tail calls fn with every batch of changes after pageToken ("" means now),
// as they happen, until ctx ends or fn fails. It wakes on local writes and
// polls every PollInterval for other replicas' writes; an idle tailer gets
// an empty batch with a fresh token every Heartbeat.
func (f *Feed) Tail(ctx context.Context, pageToken string, fn func(changes []Change, next string) error) error {
	tok := pageToken
	if tok == "" {
		var err error
		if tok, err = f.Now(); err != nil {
			return err
		}
	}
	lastSent := f.now()
	if pageToken == "" {
		// A reader that starts "now" gets its position at once, so a stream
		// that breaks before the first change can still resume without a gap.
		lastSent = time.Time{}
	}
	for {
		wake := f.wake.C()
		changes, next, err := f.List(ctx, time.Time{}, tok, MaxPageSize)
		if err != nil {
			return err
		}
		tok = next
		if len(changes) > 0 || f.now().Sub(lastSent) >= f.cfg.Heartbeat {
			if err := fn(changes, next); err != nil {
				return err
			}
			lastSent = f.now()
			if len(changes) > 0 {
				continue
			}
		}
		timer := time.NewTimer(f.cfg.PollInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Purge deletes tombstones older than the retention.
func (f *Feed) Purge(ctx context.Context) (int64, error) {
	return f.src.PurgeTombstones(ctx, f.now().Add(-f.cfg.Retention))
}

// Notifier wakes tailers when this process writes.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewNotifier returns a Notifier.
func NewNotifier() *Notifier { return &Notifier{ch: make(chan struct{})} }

// C returns a channel closed at the next Notify.
func (n *Notifier) C() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

// Notify wakes every waiter.
func (n *Notifier) Notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}
