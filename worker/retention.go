package worker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/retention"
)

// RetentionPreview returns what the retention rules of backup plan name
// decide now: exactly what the lifecycle job's next pass removes, unless
// a backup or a restore test ends in between.
func (e *Engine) RetentionPreview(ctx context.Context, name string) (vigil.RetentionPreview, error) {
	plan, ok := e.cfg.Current().BackupPlan(name)
	if !ok {
		var known []string
		for _, p := range e.cfg.Current().BackupPlans {
			known = append(known, p.Name)
		}
		return vigil.RetentionPreview{}, &vigil.UnknownNameError{Kind: "backup plan", Name: name, Known: known}
	}
	if plan.Retention == nil {
		return vigil.RetentionPreview{}, vigil.Invalidf("backup plan %q has no retention rules: its recovery points expire by its expire_days or expire_after, or are kept forever; add retention: {keep_daily: 7, …} to the plan to use them", name)
	}
	lastGood, err := e.catalog.LastGoodRecoveryPoints(ctx)
	if err != nil {
		return vigil.RetentionPreview{}, err
	}
	keep, remove, err := e.planRetention(ctx, plan, lastGood)
	if err != nil {
		return vigil.RetentionPreview{}, err
	}
	return vigil.RetentionPreview{Plan: plan.Name, Rules: plan.Retention.Policy().String(), Timezone: plan.Zone(),
		Keep: keep, Remove: remove}, nil
}

// RetentionKeptBy maps the id of every point of a plan with retention
// rules that the rules keep to the rules keeping it; a point of such a
// plan that is missing goes at the next pass.
func (e *Engine) RetentionKeptBy(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	if !slices.ContainsFunc(e.cfg.Current().BackupPlans, func(p config.BackupPlan) bool { return p.Retention != nil }) {
		return out, nil
	}
	lastGood, err := e.catalog.LastGoodRecoveryPoints(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range e.cfg.Current().BackupPlans {
		if p.Retention == nil {
			continue
		}
		keep, _, err := e.planRetention(ctx, p, lastGood)
		if err != nil {
			return nil, err
		}
		for _, rp := range keep {
			out[rp.ID] = rp.KeptBy
		}
	}
	return out, nil
}

// planRetention applies plan's rules to its recovery points, one group
// per resource and vault (a plan that moved to another vault keeps its
// old points by the same rules there), newest first. Only AVAILABLE and
// DAMAGED points take part: the others are being made or deleted.
func (e *Engine) planRetention(ctx context.Context, plan config.BackupPlan, lastGood map[string]string) (keep, remove []vigil.RecoveryPoint, err error) {
	rps, err := e.catalog.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{
		Plan: plan.Name, Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable, vigil.RecoveryPointDamaged}})
	if err != nil {
		return nil, nil, fmt.Errorf("list recovery points of backup plan %s: %w", plan.Name, err)
	}
	type group struct{ resource, vault string }
	var order []group
	groups := map[group][]retention.Point{}
	byID := map[string]vigil.RecoveryPoint{}
	for _, rp := range rps {
		g := group{rp.Resource, rp.Vault}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], retention.Point{ID: rp.ID, Time: rp.CreatedAt,
			Damaged: rp.Status == vigil.RecoveryPointDamaged, LastGood: lastGood[rp.Resource] == rp.ID})
		byID[rp.ID] = rp
	}
	policy, loc := plan.Retention.Policy(), plan.Location()
	for _, g := range order {
		for _, d := range retention.Apply(groups[g], policy, loc) {
			rp := byID[d.ID]
			rp.KeptBy = d.KeptBy
			if d.Keep() {
				keep = append(keep, rp)
			} else {
				remove = append(remove, rp)
			}
		}
	}
	newestFirst := func(a, b vigil.RecoveryPoint) int { return b.CreatedAt.Compare(a.CreatedAt) }
	slices.SortStableFunc(keep, newestFirst)
	slices.SortStableFunc(remove, newestFirst)
	return keep, remove, nil
}

// applyRetention removes the points that no rule of their plan keeps, by
// the path of a fixed expiry (DELETING, snapshot deleted, EXPIRED with
// RECOVERY_POINT_EXPIRED), and adds the vaults that lost one to vaults.
// Each point's expire_at is set to the moment the rules let it go, in the
// same update that marks it DELETING: a crash after that leaves a point
// the next pass of expireAll finishes like any other expired one.
func (e *Engine) applyRetention(ctx context.Context, vaults map[string]bool) []error {
	var errs []error
	lastGood, err := e.catalog.LastGoodRecoveryPoints(ctx)
	if err != nil {
		return []error{err}
	}
	for _, plan := range e.cfg.Current().BackupPlans {
		if plan.Retention == nil {
			continue
		}
		_, remove, err := e.planRetention(ctx, plan, lastGood)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules := plan.Retention.Policy().String()
		for _, rp := range remove {
			rp.ExpireAt = ptr(now())
			why := fmt.Sprintf("no retention rule of backup plan %s (%s, days counted in %s) keeps it", plan.Name, rules, plan.Zone())
			if err := e.expire(ctx, &rp, why); err != nil {
				errs = append(errs, err)
				continue
			}
			vaults[rp.Vault] = true
		}
	}
	return errs
}

// expiryReason says why a point with a fixed expiry went.
func expiryReason(rp *vigil.RecoveryPoint) string {
	return "it reached its expiry " + rp.ExpireAt.Format(time.RFC3339)
}
