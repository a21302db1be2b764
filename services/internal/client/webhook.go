package client

import (
	"context"
	"net/http"

	"github.com/dionysia/dionysia/services/internal/apiv1"
)

// CreateWebhook creates a webhook endpoint; the answer holds its secret,
// shown only this once.
func (c *Client) CreateWebhook(ctx context.Context, req apiv1.WebhookCreate) (apiv1.WebhookWithSecret, error) {
	var w apiv1.WebhookWithSecret
	err := c.do(ctx, http.MethodPost, "/api/v1/webhooks", nil, req, &w)
	return w, err
}

// AllWebhooks returns every webhook endpoint, following the pages.
func (c *Client) AllWebhooks(ctx context.Context) ([]apiv1.Webhook, error) {
	return listAll[apiv1.Webhook](ctx, c, "/api/v1/webhooks")
}

// GetWebhook returns a webhook endpoint.
func (c *Client) GetWebhook(ctx context.Context, id string) (apiv1.Webhook, error) {
	var w apiv1.Webhook
	err := c.do(ctx, http.MethodGet, "/api/v1/webhooks/"+escape(id), nil, nil, &w)
	return w, err
}

// UpdateWebhook changes the fields set in req.
func (c *Client) UpdateWebhook(ctx context.Context, id string, req apiv1.WebhookUpdate) (apiv1.Webhook, error) {
	var w apiv1.Webhook
	err := c.do(ctx, http.MethodPatch, "/api/v1/webhooks/"+escape(id), nil, req, &w)
	return w, err
}

// DeleteWebhook deletes a webhook endpoint and its deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/webhooks/"+escape(id), nil, nil, nil)
}

// RotateWebhookSecret gives an endpoint a new secret; the old one still
// signs for the grace of req (nil: the server's default).
func (c *Client) RotateWebhookSecret(ctx context.Context, id string, req *apiv1.WebhookRotateSecret) (apiv1.WebhookWithSecret, error) {
	var w apiv1.WebhookWithSecret
	var body any
	if req != nil {
		body = req
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/webhooks/"+escape(id)+"/rotate-secret", nil, body, &w)
	return w, err
}

// TestWebhook sends a webhook.test event to the endpoint.
func (c *Client) TestWebhook(ctx context.Context, id string) (apiv1.WebhookTestSent, error) {
	var s apiv1.WebhookTestSent
	err := c.do(ctx, http.MethodPost, "/api/v1/webhooks/"+escape(id)+"/test", nil, nil, &s)
	return s, err
}

// WebhookDeliveries returns one page of an endpoint's deliveries, newest
// first.
func (c *Client) WebhookDeliveries(ctx context.Context, id string, opts ListOptions) (apiv1.List[apiv1.WebhookDelivery], error) {
	var l apiv1.List[apiv1.WebhookDelivery]
	err := c.do(ctx, http.MethodGet, "/api/v1/webhooks/"+escape(id)+"/deliveries", opts.query(), nil, &l)
	return l, err
}

// RedeliverEvent queues an event again to every matching enabled endpoint.
func (c *Client) RedeliverEvent(ctx context.Context, id string) (apiv1.EventRedelivered, error) {
	var r apiv1.EventRedelivered
	err := c.do(ctx, http.MethodPost, "/api/v1/events/"+escape(id)+"/redeliver", nil, nil, &r)
	return r, err
}
