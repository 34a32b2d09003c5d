// Package ruler evaluates Prometheus recording and alerting rules against the
// global view of strata.
//
// The model follows Prometheus' own rule manager, which this package drives:
//
//   - Rule files are standard Prometheus rule files, loaded and validated with
//     rulefmt. A reload validates every file first and keeps the running groups
//     when anything is wrong.
//   - Every rule query is sent to the Prometheus HTTP API of a querier
//     (/api/v1/query), trying each configured endpoint in turn until one answers;
//     or, with Store API endpoints instead, evaluated by the ruler's own PromQL
//     engine over the querier's fan-out and replica deduplication.
//   - Each group chooses what an answer with missing data means, with the
//     partial_response_strategy field: "abort" (the default) fails the
//     evaluation rather than recording a wrong value or resolving an alert;
//     "warn" accepts it.
//   - Results (recording rule samples, ALERTS and ALERTS_FOR_STATE) are appended
//     to a Prometheus agent-mode WAL in the data directory. Prometheus' remote
//     write queues tail that WAL and push to the receivers, so an outage of the
//     receivers, or a restart of the ruler, loses nothing while the WAL still
//     holds the samples.
//   - Alerts go to Alertmanager through Prometheus' notifier, with the external
//     labels attached. An Alertmanager host name stands for all its addresses,
//     re-resolved periodically, so one name reaches every member of an HA
//     cluster.
//   - After a restart the `for` state of alerts is restored from the
//     ALERTS_FOR_STATE series that earlier evaluations remote-wrote, read back
//     through the same query path.
package ruler
