"""growdsl's benchmarks (not tests): each script prints a table and writes JSON results;
`make bench` runs them; docs/benchmarks.md records the results."""
