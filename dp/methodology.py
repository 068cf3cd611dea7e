"""METHODOLOGY.md of a release, generated from its facts and the code lists."""

from data_contracts.codelists import codelists, label
from dp.spec import CUBE_DIMENSIONS, domain, release_spec

LISTS = {"unaccompanied_child": "flag", "smuggling_debt": "flag"}


def _code_lists() -> str:
    parts = []
    for dim in ("reporting_country", *CUBE_DIMENSIONS):
        lst = codelists()[LISTS.get(dim, dim)]
        rows = (
            "\n".join(f"| `{c}` | {lst.codes[c].label} |" for c in domain(dim))
            if dim != "reporting_country"
            else "\n".join(f"| `{c}` | {v.label} |" for c, v in lst.codes.items())
        )
        parts.append(f"**{dim}** ({lst.label})\n\n| code | label |\n|---|---|\n{rows}\n| `_T` | Total |\n")
    return "\n".join(parts)


def promise_text(facts: dict) -> str:
    """The promise to each person, in words (from `facts["person"]`: dp/ledger.py Promise)."""
    p = facts["person"]
    return f"""**The promise to each person.** Over every dataset and revision of {p["year"]} released so
far, this one included, the data of any one person has cost at most **ρ = {p["rho"]:.4g}**, that
is **ε = {p["epsilon"]:.3g} at δ = {p["delta"]:g}**: their quarter's case tables (every revision),
the screening tables of every quarter, and the year's capture histories. No release may take it
beyond the yearly cap, ρ = {p["rho_cap"]:g} (ε = {p["epsilon_cap"]:.3g}). The unit is one person in one
reporting country: a human recorded in k countries is k persons and carries up to k times this
ρ; a human whose records linkage did not join within a country is several persons, and k
of them in the same cells carry up to k² times it (group privacy)."""


def methodology(release_id: str, facts: dict) -> str:
    """METHODOLOGY.md of a quarterly release: what is counted, the privacy loss spent and the
    measured tables (from `facts`, the release's row and its ledger charges), how to read an
    interval, and the code lists."""
    spec = release_spec()
    level = round(spec.interval_level * 100)
    scales = "\n".join(
        f"| {dataset} | {marginal} | {scale:.2f} | {rho:.4f} |" for dataset, marginal, scale, rho in facts["charges"]
    )
    return f"""# THB Observatory, release {release_id}

Counts of presumed and identified victims of trafficking in human beings recorded by NGOs,
asylum services, police and other bodies in Greece, North Macedonia, Serbia, Bulgaria,
Austria, Germany, Sweden and Finland, for **{facts["time_period"]}** (revision {facts["revision"]}),
released {facts["released_at"]}. Method version {spec.method_version}.

## What is counted

A **person** in a reporting country: records that share a pseudonymous person key within a
country, or whose keyed identity encodings the warehouse's linkage matches (names and dates
of birth never leave the providers), are one person; a record with neither is its own
person. Each person counts once
per country, in the quarter of their first record there, with one value per attribute
(reconciled by a documented precedence rule: formal bodies before NGOs; status
`identified` if any record says so). `counts` breaks persons down by status, form of
exploitation, route stage, gender, age group, and (by form) unaccompanied children and
smuggling debt. `screenings` counts asylum applicants screened for trafficking indicators:
the denominator of "presumed victims per 1,000 screened". An applicant screened more than
once in a quarter (under the same pseudonymous applicant key) counts once, with their first
screening of the quarter; one screened in several quarters counts once in each.
`ref_area = _T` is the sum of the eight countries. Every cell of every table is published,
zeros included.

## Privacy

Differential privacy (zero-concentrated, zCDP), unit of privacy: one person in one
reporting country. This release spent **ρ = {facts["rho"]:.4g}**, that is
**ε = {facts["epsilon"]:.3g} at δ = {facts["delta"]:g}**. Noise comes only from OpenDP's
discrete Gaussian mechanism on integer counts; each measured table has L2 sensitivity 1.
Countries hold disjoint persons and are measured in parallel; each person stays in the
quarter first released for them. The caps are ρ = {spec.budget.rho_per_quarter:g}
per quarter and ρ = {spec.budget.rho_per_year:g} per person and year (their quarter's tables, every quarter's
screenings, the year's annual tables). A published release is
never recomputed; late records come in a new, charged revision.

{promise_text(facts)}

Measured tables (the rest are derived from them):

| dataset | marginal | noise σ | ρ |
|---|---|---:|---:|
{scales}

All published numbers are post-processed from these measurements: generalised least squares
makes every table consistent; then non-negative integers that add up to their totals.

## Reading a number

Each cell has an interval `[ci_low, ci_high]` at {level} %: over many releases, {level} in 100
such intervals contain the count the sources' records give. A cell is flagged
`obs_status = u` (low reliability) when the interval's half-width exceeds
{spec.unreliable_relative_half_width:.0%} of the value, and every zero (under noise a zero is never
certain): read it as "somewhere in the interval", not as a number. To combine cells,
add the values; the interval of a sum is not the sum of the intervals (see the notebooks).

These are persons the sources saw, not all victims: most victims are never identified.

## Code lists

{_code_lists()}
"""


def annual_methodology(release_id: str, facts: dict) -> str:
    """METHODOLOGY.md of an annual release of hidden-population estimates: the MSE model and its
    assumptions in plain words, the privacy loss spent (from `facts`) and how to read the interval."""
    spec = release_spec()
    e = spec.estimates
    pathways = "; ".join(
        f"{label('source_type', a).lower()} from {label('source_type', b).lower()}" for a, b in e.known_dependence
    )
    return f"""# THB Observatory, release {release_id}: hidden victims, {facts["time_period"]}

How many victims did no source see? For each reporting country, the persons with a
pseudonymous key first recorded in {facts["time_period"]} are cross-classified by the sources that
recorded them that year (their capture history). Records without a key are left out: nobody
can tell whether another source saw them. Multiple systems estimation fits a Poisson
log-linear model to that table: all main effects; an interaction for each pair of sources
linked by a referral pathway ({pathways or "none declared"}); and further two-source interactions added one by
one while the most significant has a p-value below {e.pthresh} (Chan, Silverman & Vincent
2019), each only if its maximum likelihood estimate exists and is identifiable. The number no
source saw is the model's estimate for the empty capture history. `estimates` gives, per
country: `observed` (persons with a key seen by at least one source, from the protected
table), `obs_value` (the estimated total, seen and unseen), a 95 % interval
`[ci_low, ci_high]`, and the fitted interactions (`model`).

**Assumptions, in plain words.** The population is the same for all sources during the year
(closed); the sources depend on each other only as the fitted interactions allow (for
instance, an NGO referring victims to social services); within each source every victim has
the same chance of being recorded, or differences in that chance affect the sources alike;
and a record loses its key by chance, not because the person is, or is not, on another
source. Where these fail, the estimate is biased; the interval does not include that bias.

**Privacy.** The capture-history tables were measured with OpenDP's discrete Gaussian
(each person is in one cell; L2 sensitivity 1): this release spent ρ = {facts["rho"]:.4g},
ε = {facts["epsilon"]:.3g} at δ = {facts["delta"]:g}, charged to the persons of
{facts["time_period"]} under the yearly cap ρ = {spec.budget.rho_per_year:g}.

{promise_text(facts)}

**Reading the interval.** It is a BCa bootstrap interval from {e.nboot} resamples of the
cases; each resample also receives fresh noise of the same, public distribution, so the
interval accounts for the sampling error and for the privacy noise. No estimate is published
where fewer than {e.min_observed} persons were seen or the sources do not overlap enough;
an estimate is flagged `u` when its upper bound exceeds {e.max_relative_width:g} times the estimate.
"""
