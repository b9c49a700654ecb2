package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
)

// listPlans answers the backup plans and restore testing plans, with
// their next runs and pauses.
func (s *Server) listPlans(r *http.Request) (any, error) {
	pauses, err := s.catalog.PlanPauses(r.Context())
	if err != nil {
		return nil, err
	}
	return s.cfg.Current().Plans(time.Now(), pauses), nil
}

// pausePlan pauses the plan called {name}; ?kind= (backup or
// restore_test) picks one of a backup plan and a restore testing plan of
// the same name, and ?by= says who paused it (default "api").
func (s *Server) pausePlan(r *http.Request) (any, error) {
	ref, err := s.planRef(r)
	if err != nil {
		return nil, err
	}
	by := strings.TrimSpace(r.URL.Query().Get("by"))
	if by == "" {
		by = "api"
	}
	if err := s.catalog.PausePlan(r.Context(), ref, by, time.Now()); err != nil {
		return nil, err
	}
	return s.plan(r.Context(), ref)
}

// resumePlan resumes the plan called {name}, which then runs on its
// schedule again; resuming a plan that is not paused changes nothing.
func (s *Server) resumePlan(r *http.Request) (any, error) {
	ref, err := s.planRef(r)
	if err != nil {
		return nil, err
	}
	if _, err := s.catalog.ResumePlan(r.Context(), ref); err != nil {
		return nil, err
	}
	return s.plan(r.Context(), ref)
}

// planRef finds the plan a pause or resume names.
func (s *Server) planRef(r *http.Request) (vigil.PlanRef, error) {
	name, kind := r.PathValue("name"), vigil.PlanKind(r.URL.Query().Get("kind"))
	switch kind {
	case "", vigil.BackupPlanKind, vigil.RestoreTestPlanKind:
	default:
		return vigil.PlanRef{}, badRequest("kind %q: give backup or restore_test", kind)
	}
	var found []vigil.PlanRef
	for _, ref := range s.cfg.Current().PlanRefs(name) {
		if kind == "" || ref.Kind == kind {
			found = append(found, ref)
		}
	}
	switch {
	case len(found) == 0:
		return vigil.PlanRef{}, &vigil.UnknownNameError{Kind: "plan", Name: name, Known: s.cfg.Current().PlanNames()}
	case len(found) > 1:
		return vigil.PlanRef{}, badRequest("a backup plan and a restore testing plan are both called %q: say which with kind=backup or kind=restore_test (vigil plans pause --kind)", name)
	}
	return found[0], nil
}

// plan answers one plan as listPlans does.
func (s *Server) plan(ctx context.Context, ref vigil.PlanRef) (vigil.Plan, error) {
	pauses, err := s.catalog.PlanPauses(ctx)
	if err != nil {
		return vigil.Plan{}, err
	}
	for _, p := range s.cfg.Current().Plans(time.Now(), pauses) {
		if p.PlanRef == ref {
			return p, nil
		}
	}
	return vigil.Plan{}, &vigil.UnknownNameError{Kind: "plan", Name: ref.Name, Known: s.cfg.Current().PlanNames()}
}
