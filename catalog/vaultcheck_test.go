package catalog_test

import (
	"context"
	"testing"

	"github.com/vigil-backup/vigil/catalog"
)

func TestVaultChecks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		none, err := c.LastVaultChecks(ctx)
		requireNoError(t, err)
		requireEqual(t, len(none), 0)
		for _, ck := range []catalog.VaultCheck{
			{Vault: "a", CheckedAt: at(1), Snapshots: 3},
			{Vault: "a", CheckedAt: at(2), ReadDataPercent: 10, Snapshots: 4, Problems: 1, Summary: "snapshot x: missing content"},
			{Vault: "b", CheckedAt: at(3), Snapshots: 1},
		} {
			requireNoError(t, c.InsertVaultCheck(ctx, ck))
		}
		last, err := c.LastVaultChecks(ctx)
		requireNoError(t, err)
		requireEqual(t, last, map[string]catalog.VaultCheck{
			"a": {Vault: "a", CheckedAt: at(2), ReadDataPercent: 10, Snapshots: 4, Problems: 1, Summary: "snapshot x: missing content"},
			"b": {Vault: "b", CheckedAt: at(3), Snapshots: 1},
		})
	})
}
