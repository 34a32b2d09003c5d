// Package storeapi is strata's Store API: the gRPC contract through which a
// querier reads series and label metadata from receivers, store gateways and
// other queriers. It is wire-compatible with Thanos' Store API, so a Thanos
// querier can read strata's stores and strata's querier can read Thanos'
// sidecars and stores. docs/storeapi.md describes the wire contract.
//
// # Packages
//
// storepb (proto package thanos: service Store, its messages and the data
// types) and infopb (proto package thanos.info: service Info) hold the code
// generated from our own .proto files by make proto; they import nothing else
// from the repository. This package holds the hand-written helpers and
// servers, and storeapitest the acceptance suite that every implementation
// runs.
//
// # Contract
//
// A store holds series of one or more TSDBs, each TSDB with its external labels
// (a receiver's tenant has tenant_id and the replica label). Every series goes
// out with its TSDB's external labels attached; an external label replaces a
// series label of the same name. Then:
//
//   - Series streams series sorted by labels as the client sees them, external
//     labels included and without_replica_labels left out. Attaching or dropping
//     labels can change the TSDB's order, so a store sorts after it has done
//     both. Series with equal labels from several TSDBs go out as one series.
//   - A matcher on an external label is evaluated against the external value:
//     if it fails, that TSDB contributes nothing; if it holds, it is not passed
//     to the TSDB. A request whose only matchers are on external labels selects
//     every series of the TSDBs they match.
//   - without_replica_labels drops the named labels that are external labels;
//     other names are ignored.
//   - Chunks are the TSDB's raw chunks (XOR, histogram, float histogram) with
//     their time range and the xxhash64 of their bytes; chunks may extend past
//     the requested range, and the client trims. skip_chunks sends labels only.
//   - LabelNames and LabelValues include the external labels of the TSDBs that
//     have matching series. Their time filtering may be as coarse as blocks.
//   - Info reports the external label sets, the component type and StoreInfo
//     with the time range and supports_without_replica_labels.
//   - A bad matcher (an unknown type or a regular expression that does not
//     compile) is gRPC InvalidArgument.
//
// TSDBStore serves one TSDB and MultiStore several behind one server; the
// receiver's tsdbshard.Manager serves all its tenants through a MultiStore.
package storeapi
