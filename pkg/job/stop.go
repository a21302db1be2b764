package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Stopping a session: the control plane sets a key that says the session must
// stop and why, then publishes the same on a channel. A worker subscribes to the
// channel for a fast reaction and also checks the key on a timer, so a stop is
// never missed while the subscription is down (Redis restart, reconnect) or when
// the stop was requested before the worker picked the task up.

// DefaultPrefix is the Redis key prefix used by every Dionysia component.
const DefaultPrefix = "dionysia:"

// stopTTL bounds how long a stop request is remembered.
const stopTTL = 48 * time.Hour

// StopSignal requests and watches session stops in Redis.
type StopSignal struct {
	Redis  redis.UniversalClient
	Prefix string // key prefix; DefaultPrefix when empty
	// PollInterval is how often Watch checks the key besides listening on the
	// channel; 2 s when zero.
	PollInterval time.Duration
}

type stopMessage struct {
	SessionID uuid.UUID `json:"session_id"`
	Reason    string    `json:"reason"`
}

func (s StopSignal) prefix() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

func (s StopSignal) key(id uuid.UUID) string { return s.prefix() + "session:" + id.String() + ":stop" }
func (s StopSignal) channel() string         { return s.prefix() + "session-stop" }

// deliveryTTL is how long a delivered SessionEvent ID is remembered: far
// beyond a worker's retries (about 5 s).
const deliveryTTL = time.Hour

// FirstDelivery reports whether the session event id is delivered for the
// first time; forget undoes it, for a delivery that could not be handled
// (its retry is then handled). A Redis failure is returned with first true:
// better a duplicate than a lost event.
func (s StopSignal) FirstDelivery(ctx context.Context, id uuid.UUID) (first bool, forget func(), err error) {
	key := s.prefix() + "session-event:" + id.String()
	ok, err := s.Redis.SetNX(ctx, key, 1, deliveryTTL).Result()
	if err != nil {
		return true, func() {}, fmt.Errorf("remembering session event %s: %w", id, err)
	}
	return ok, func() { s.Redis.Del(context.WithoutCancel(ctx), key) }, nil
}

// Request asks the worker running the session to stop, with a short reason
// such as "publisher_disconnected" or "stream_disabled".
func (s StopSignal) Request(ctx context.Context, sessionID uuid.UUID, reason string) error {
	msg, err := json.Marshal(stopMessage{SessionID: sessionID, Reason: reason})
	if err != nil {
		return fmt.Errorf("encoding stop message: %w", err)
	}
	if _, err := s.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.key(sessionID), reason, stopTTL)
		p.Publish(ctx, s.channel(), msg)
		return nil
	}); err != nil {
		return fmt.Errorf("requesting stop of session %s: %w", sessionID, err)
	}
	return nil
}

// Requested reports whether a stop was requested for the session, and why.
func (s StopSignal) Requested(ctx context.Context, sessionID uuid.UUID) (reason string, ok bool, err error) {
	reason, err = s.Redis.Get(ctx, s.key(sessionID)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("checking stop of session %s: %w", sessionID, err)
	}
	return reason, true, nil
}

// Watch returns a channel that receives the stop reason once, when a stop of
// the session is requested, and is closed when ctx ends. Redis errors are
// retried: they delay a stop, they never fake one.
func (s StopSignal) Watch(ctx context.Context, sessionID uuid.UUID) <-chan string {
	out := make(chan string, 1)
	interval := s.PollInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	go func() {
		defer close(out)
		sub := s.Redis.Subscribe(ctx, s.channel())
		defer sub.Close()
		msgs := sub.Channel()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		deliver := func(reason string) { out <- reason }
		// A stop requested before we subscribed is only visible in the key.
		if reason, ok, _ := s.Requested(ctx, sessionID); ok {
			deliver(reason)
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					msgs = nil // subscription closed; keep polling
					continue
				}
				var sm stopMessage
				if json.Unmarshal([]byte(m.Payload), &sm) == nil && sm.SessionID == sessionID {
					deliver(sm.Reason)
					return
				}
			case <-tick.C:
				if reason, ok, _ := s.Requested(ctx, sessionID); ok {
					deliver(reason)
					return
				}
			}
		}
	}()
	return out
}
