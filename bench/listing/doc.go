// Package listing holds the benchmark of vigil's lists at scale: a catalog
// filled with 100,000 backup jobs, 100,000 restore jobs and about 95,000
// recovery points, on SQLite and on PostgreSQL, and the API's lists, the
// console's pages and the metrics scrape timed over real HTTP against it.
// Its only code is a benchmark (listing_test.go), so an ordinary test run
// fills nothing; bench/listing.sh runs it and prints the medians.
package listing
