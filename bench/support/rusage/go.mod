module github.com/whereabouts-ts/whereabouts-ts/bench/support/rusage

go 1.22
