module github.com/whereabouts-ts/whereabouts-ts/forwarder

go 1.22
