package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/netguard"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/dionysia/dionysia/services/internal/webhook"
	"github.com/google/uuid"
	"github.com/labstack/echo/v5"
)

// Limits of webhook fields.
const (
	maxWebhookURL        = 2048
	maxWebhookEventTypes = 64
	maxSecretGrace       = 30 * 24 * time.Hour
	urlCheckTimeout      = 5 * time.Second
)

func (s *Server) webhookRoutes(g *echo.Group) {
	g.POST("/webhooks", s.createWebhook)
	g.GET("/webhooks", s.listWebhooks)
	g.GET("/webhooks/:id", s.getWebhook)
	g.PATCH("/webhooks/:id", s.updateWebhook)
	g.DELETE("/webhooks/:id", s.deleteWebhook)
	g.POST("/webhooks/:id/rotate-secret", s.rotateWebhookSecret)
	g.POST("/webhooks/:id/test", s.testWebhook)
	g.GET("/webhooks/:id/deliveries", s.listDeliveries)
	g.POST("/events/:id/redeliver", s.redeliverEvent)
}

// checkWebhookURL validates a target: http(s), at most maxWebhookURL long,
// and (unless private targets are allowed) not resolving to a loopback,
// private, link-local or otherwise internal address (pkg/netguard; the
// delivery worker checks the address again when it connects).
func (s *Server) checkWebhookURL(ctx context.Context, errs *[]apiv1.FieldError, raw string) {
	if strings.TrimSpace(raw) == "" {
		*errs = append(*errs, fieldError("url", "must not be empty"))
		return
	}
	if len(raw) > maxWebhookURL {
		*errs = append(*errs, fieldError("url", "must be at most %d characters, got %d", maxWebhookURL, len(raw)))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, urlCheckTimeout)
	defer cancel()
	_, err := s.guard.CheckURL(ctx, raw)
	switch {
	case err == nil:
	case errors.Is(err, netguard.ErrForbiddenAddress):
		*errs = append(*errs, fieldError("url", "%v: webhooks may not target loopback, private, link-local or other internal addresses unless %s is set (on-prem receivers, development)",
			err, config.VarAllowPrivateTargets.Env))
	case errors.Is(err, netguard.ErrResolve):
		*errs = append(*errs, fieldError("url", "the host does not resolve: %v", err))
	default:
		*errs = append(*errs, fieldError("url", "must be an http:// or https:// URL with a host: %v", err))
	}
}

func checkEventTypes(errs *[]apiv1.FieldError, types []string) {
	if len(types) > maxWebhookEventTypes {
		*errs = append(*errs, fieldError("event_types", "must list at most %d types, got %d", maxWebhookEventTypes, len(types)))
		return
	}
	seen := map[string]bool{}
	for i, t := range types {
		field := fmt.Sprintf("event_types[%d]", i)
		if err := webhook.CheckEventType(t); err != nil {
			*errs = append(*errs, fieldError(field, "%v (docs/events.md lists them)", err))
		} else if seen[t] {
			*errs = append(*errs, fieldError(field, "duplicate event type %q", t))
		}
		seen[t] = true
	}
}

// checkStream checks that a stream filter names an existing stream.
func (s *Server) checkStream(ctx context.Context, errs *[]apiv1.FieldError, id *uuid.UUID) error {
	if id == nil {
		return nil
	}
	ok, err := s.store.StreamExists(ctx, *id)
	if err != nil {
		return err
	}
	if !ok {
		*errs = append(*errs, fieldError("stream_id", "no stream with id %s", *id))
	}
	return nil
}

func (s *Server) createWebhook(c *echo.Context) error {
	ctx := c.Request().Context()
	var req apiv1.WebhookCreate
	if err := readBody(c.Request(), &req); err != nil {
		return err
	}
	var errs []apiv1.FieldError
	s.checkWebhookURL(ctx, &errs, req.URL)
	checkText(&errs, "description", req.Description, maxDescription, false)
	checkEventTypes(&errs, req.EventTypes)
	if err := s.checkStream(ctx, &errs, req.StreamID); err != nil {
		return err
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	enabled := req.Enabled == nil || *req.Enabled
	w, err := s.store.CreateWebhook(ctx, store.NewWebhook{URL: req.URL, Description: req.Description, EventTypes: req.EventTypes,
		StreamID: req.StreamID, Enabled: enabled})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/api/v1/webhooks/"+w.ID.String())
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, apiv1.WebhookWithSecret{Webhook: webhook.Doc(w), Secret: w.Secret})
}

func (s *Server) listWebhooks(c *echo.Context) error {
	page, err := pageFromQuery(c)
	if err != nil {
		return err
	}
	items, next, err := s.store.ListWebhooks(c.Request().Context(), page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(items, next, webhook.Doc))
}

// loadWebhook returns the webhook of the :id path parameter (404 naming it).
func (s *Server) loadWebhook(c *echo.Context) (store.Webhook, error) {
	id, err := pathID(c, "webhook")
	if err != nil {
		return store.Webhook{}, err
	}
	w, err := s.store.GetWebhook(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Webhook{}, notFound("no webhook with id %s", id)
	}
	return w, err
}

func (s *Server) getWebhook(c *echo.Context) error {
	w, err := s.loadWebhook(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhook.Doc(w))
}

func (s *Server) updateWebhook(c *echo.Context) error {
	ctx := c.Request().Context()
	cur, err := s.loadWebhook(c)
	if err != nil {
		return err
	}
	var req apiv1.WebhookUpdate
	if err := readBody(c.Request(), &req); err != nil {
		return err
	}
	var errs []apiv1.FieldError
	if req.URL != nil {
		s.checkWebhookURL(ctx, &errs, *req.URL)
	}
	if req.Description != nil {
		checkText(&errs, "description", *req.Description, maxDescription, false)
	}
	u := store.WebhookUpdate{URL: req.URL, Description: req.Description, Enabled: req.Enabled}
	if req.EventTypes != nil {
		checkEventTypes(&errs, *req.EventTypes)
		u.EventTypes = append([]string{}, *req.EventTypes...)
	}
	if req.StreamID.Set {
		if err := s.checkStream(ctx, &errs, req.StreamID.ID); err != nil {
			return err
		}
		u.SetStreamID, u.StreamID = true, req.StreamID.ID
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	if u.Enabled != nil && *u.Enabled && cur.Enabled {
		u.Enabled = nil // enabling an enabled endpoint changes nothing (and does not reset its count)
	}
	w, err := s.store.UpdateWebhook(ctx, cur.ID, u)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no webhook with id %s", cur.ID)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhook.Doc(w))
}

func (s *Server) deleteWebhook(c *echo.Context) error {
	id, err := pathID(c, "webhook")
	if err != nil {
		return err
	}
	err = s.store.DeleteWebhook(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no webhook with id %s", id)
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) rotateWebhookSecret(c *echo.Context) error {
	id, err := pathID(c, "webhook")
	if err != nil {
		return err
	}
	// The body is optional: none means the configured grace.
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return decodeError(err)
	}
	grace := s.cfg.Webhooks.RotationGrace
	if len(bytes.TrimSpace(raw)) > 0 {
		var req apiv1.WebhookRotateSecret
		if err := decodeJSON(bytes.NewReader(raw), &req); err != nil {
			return err
		}
		if req.GraceSeconds != nil {
			g := time.Duration(*req.GraceSeconds) * time.Second
			if *req.GraceSeconds < 0 || g > maxSecretGrace {
				return invalid([]apiv1.FieldError{fieldError("grace_seconds", "must be between 0 and %d seconds, got %d",
					int(maxSecretGrace.Seconds()), *req.GraceSeconds)})
			}
			grace = g
		}
	}
	w, err := s.store.RotateWebhookSecret(c.Request().Context(), id, grace)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no webhook with id %s", id)
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, apiv1.WebhookWithSecret{Webhook: webhook.Doc(w), Secret: w.Secret})
}

// testWebhook records a webhook.test event for this endpoint alone; the
// delivery worker sends it like any other.
func (s *Server) testWebhook(c *echo.Context) error {
	ctx := c.Request().Context()
	w, err := s.loadWebhook(c)
	if err != nil {
		return err
	}
	if !w.Enabled {
		return conflict("webhook %s is disabled: enable it (PATCH enabled=true) to send it a test event", w.ID)
	}
	ev, err := s.store.AppendEvent(ctx, store.NewEvent{Type: event.WebhookTest, WebhookID: &w.ID, Data: webhook.Doc(w)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, apiv1.WebhookTestSent{EventID: ev.ID})
}

func deliveryDoc(d store.Delivery) apiv1.WebhookDelivery {
	doc := apiv1.WebhookDelivery{ID: d.ID, EventID: d.EventID, EventType: d.EventType, StreamID: d.StreamID, Status: d.Status,
		Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, LastStatusCode: d.LastStatusCode, LastError: d.LastError,
		CreatedAt: d.CreatedAt, DeliveredAt: d.DeliveredAt, FailedAt: d.FailedAt, AttemptLog: make([]apiv1.WebhookAttempt, len(d.AttemptLog))}
	for i, a := range d.AttemptLog {
		doc.AttemptLog[i] = apiv1.WebhookAttempt{AttemptedAt: a.AttemptedAt, StatusCode: a.StatusCode,
			LatencyMS: a.Latency.Milliseconds(), Error: a.Error}
	}
	return doc
}

func (s *Server) listDeliveries(c *echo.Context) error {
	w, err := s.loadWebhook(c)
	if err != nil {
		return err
	}
	page, err := pageFromQuery(c)
	if err != nil {
		return err
	}
	items, next, err := s.store.ListDeliveries(c.Request().Context(), w.ID, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(items, next, deliveryDoc))
}

func (s *Server) redeliverEvent(c *echo.Context) error {
	id, err := pathID(c, "event")
	if err != nil {
		return err
	}
	ids, err := s.store.RedeliverEvent(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no event with id %s (unknown, or pruned after the retention period)", id)
	}
	if err != nil {
		return err
	}
	if ids == nil {
		ids = []uuid.UUID{}
	}
	return c.JSON(http.StatusAccepted, apiv1.EventRedelivered{EventID: id, WebhookIDs: ids})
}
