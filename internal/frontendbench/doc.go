// Package frontendbench measures the query frontend on a generated bucket.
package frontendbench
