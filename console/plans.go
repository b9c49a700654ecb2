package console

import (
	"net/http"

	"github.com/vigil-backup/vigil"
)

// plansPage lists the backup plans and restore testing plans with their
// next runs, each with a button to pause or resume it.
func (c *Console) plansPage(w http.ResponseWriter, r *http.Request) {
	pauses, err := c.catalog.PlanPauses(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "plans", map[string]any{"Plans": c.cfg.Current().Plans(c.now(), pauses)})
}

// pausePlan pauses or resumes the plan the form names, then shows the
// plans again.
func (c *Console) pausePlan(w http.ResponseWriter, r *http.Request) {
	ref := vigil.PlanRef{Kind: vigil.PlanKind(r.PostFormValue("kind")), Name: r.PostFormValue("name")}
	known := false
	for _, p := range c.cfg.Current().PlanRefs(ref.Name) {
		known = known || p == ref
	}
	if !known {
		c.render(w, r, http.StatusBadRequest, "error", map[string]any{"Error": "There is no " + string(ref.Kind) + " plan called " + ref.Name + " in the server's config: reload the plans page."})
		return
	}
	var err error
	if r.PostFormValue("action") == "resume" {
		_, err = c.catalog.ResumePlan(r.Context(), ref)
	} else {
		err = c.catalog.PausePlan(r.Context(), ref, "console", c.now())
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/plans", http.StatusSeeOther)
}
