package api

import (
	"errors"
	"net/http"
	"regexp"

	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/labstack/echo/v5"
)

// EventData renders resources as event data: their API JSON without secrets
// (no stream key, no ingest URL). Package ingest records its events with it.
type EventData struct {
	Public config.PublicURLs // for the streams' playback URLs
}

// Stream is the data of a stream.* event.
func (r EventData) Stream(st store.Stream, open *store.Session) apiv1.EventStream {
	doc := streamDoc(r.Public, st, open)
	doc.StreamKey, doc.Ingest = "", apiv1.IngestURLs{}
	return apiv1.EventStream{Stream: doc}
}

// Session is the data of a session.* or transcode.* event.
func (EventData) Session(sess store.Session) apiv1.EventSession {
	return apiv1.EventSession{StreamID: sess.StreamID, Session: sessionDoc(sess)}
}

// Worker is the data of a worker.* event.
func (EventData) Worker(w fleet.WorkerStatus) apiv1.EventWorker {
	return apiv1.EventWorker{Worker: workerDoc(w)}
}

// appendStreamEvent records a stream.* event in tx, with the stream's open
// session when it has one.
func (s *Server) appendStreamEvent(c *echo.Context, tx *store.Store, typ string, st store.Stream) error {
	ctx := c.Request().Context()
	var open *store.Session
	if sess, err := tx.OpenSessionOf(ctx, st.ID); err == nil {
		open = &sess
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	_, err := tx.AppendEvent(ctx, store.NewEvent{Type: typ, StreamID: &st.ID, Data: EventData{Public: s.cfg.Public}.Stream(st, open)})
	return err
}

func (s *Server) eventRoutes(g *echo.Group) {
	g.GET("/events", s.listEvents)
	g.GET("/events/:id", s.getEvent)
}

// eventTypePrefix is what ?type= accepts: the start of an event type.
var eventTypePrefix = regexp.MustCompile(`^[a-z_]+(\.[a-z_]*)*$`)

// maxTypePrefix bounds ?type=.
const maxTypePrefix = 100

// eventFilter reads ?type= and ?stream_id=.
func eventFilter(c *echo.Context) (store.EventFilter, error) {
	var f store.EventFilter
	if v := c.QueryParam("type"); v != "" {
		if len(v) > maxTypePrefix || !eventTypePrefix.MatchString(v) {
			p := badRequest("type must be an event type or the start of one, such as session. or stream.live, got %q", v)
			p.fields = []apiv1.FieldError{fieldError("type", "must be lowercase words separated by dots, at most %d characters", maxTypePrefix)}
			return f, p
		}
		f.TypePrefix = v
	}
	if v := c.QueryParam("stream_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			p := badRequest("stream_id must be a stream id (a UUID), got %q", v)
			p.fields = []apiv1.FieldError{fieldError("stream_id", "must be a UUID")}
			return f, p
		}
		f.StreamID = &id
	}
	return f, nil
}

// listEvents is the event feed. Without ?after= it is a list like the
// others: newest first, paginated with ?cursor=. With ?after=<event id> it
// is what a follower has not seen yet: up to ?limit= events newer than that
// one, oldest first, with next_cursor null; the follower asks again with the
// last event's id (or the same id when the page was empty).
func (s *Server) listEvents(c *echo.Context) error {
	f, err := eventFilter(c)
	if err != nil {
		return err
	}
	page, err := pageFromQuery(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if v := c.QueryParam("after"); v != "" {
		if page.After != nil {
			p := badRequest("after and cursor cannot be combined: after follows the feed oldest first, cursor pages it newest first")
			p.fields = []apiv1.FieldError{fieldError("after", "cannot be combined with cursor")}
			return p
		}
		id, perr := uuid.Parse(v)
		var from store.Event
		if perr == nil {
			from, err = s.store.GetEvent(ctx, id)
		}
		if perr != nil || errors.Is(err, store.ErrNotFound) {
			p := badRequest("after must be the id of an event in the log, got %q (events are pruned after the retention)", v)
			p.fields = []apiv1.FieldError{fieldError("after", "no event with this id")}
			return p
		}
		if err != nil {
			return err
		}
		items, err := s.store.EventsAfter(ctx, f, from.Seq, page.Limit)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, listOf(items, nil, eventDoc))
	}
	items, next, err := s.store.ListEvents(ctx, f, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(items, next, eventDoc))
}

func (s *Server) getEvent(c *echo.Context) error {
	id, err := pathID(c, "event")
	if err != nil {
		return err
	}
	ev, err := s.store.GetEvent(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && ev.WebhookID != nil) {
		return notFound("no event with id %s", id)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, eventDoc(ev))
}

func eventDoc(ev store.Event) apiv1.Event {
	return apiv1.Event{ID: ev.ID, Type: ev.Type, CreatedAt: ev.CreatedAt, StreamID: ev.StreamID, Data: ev.Data}
}
