"""Humans on the move: victims recorded in a transit country who move on and are recorded in a
destination country too, as a migrant registered in Greece may apply again in Germany
(world.yaml `onward`, docs/simulator.md).

Each victim with a record in a transit country moves on with probability `share`, to a
destination drawn from `destinations`, arriving `gap_days` on average (exponential, at least a
day) after their last record there; whoever would arrive after the simulated period does not
move within it. In the destination the human takes the place of one of that country's own
victims whom its sources saw: one of the same gender, child or adult on arrival, asylum
applicant or not, and not a national exploited at home. That victim's circumstances stay (form
and country of exploitation, route stage, visibility, the sources that saw them), so the
destination keeps its calibrated true and seen totals and its detection model holds; the
identity (names, sex, date of birth), citizenship, age group, date of arrival and personal
flags become the human's, and so does the `human_id`. A human for whom no such place is left
does not move (only a very small world runs out of places).
"""

import numpy as np
import pandas as pd

from data_contracts.codelists import codelists, codes
from simulator.world import CHILD, choose, params, period_end, period_names, periods
from thb.periods import quarter_index

PERSONAL = ["gender", "citizenship", "asylum_applicant", "smuggling_debt", "unaccompanied_child"]
"""What a victim row says of the human (the rest is the circumstances of one country)."""
MATCHED = ["gender", "child", "asylum_applicant"]
"""What the place a human takes must agree on: what detection depends on and a human keeps."""


def age_group_at(born: np.ndarray, on: np.ndarray) -> np.ndarray:
    """The age groups of people born on `born` at the dates `on`.

    >>> d = lambda *days: np.array(days, dtype="datetime64[D]")
    >>> age_group_at(d("2000-06-01", "2000-06-01"), d("2018-05-31", "2018-06-01"))
    array(['12-17', '18-24'], dtype=object)
    """
    groups = [g for g in codes("age_group") if g != "unknown"]
    upper = np.array([codelists()["age_group"].codes[g].max or 200 for g in groups])
    return np.array(groups, dtype=object)[np.minimum(np.searchsorted(upper, _age(born, on)), len(groups) - 1)]


def _age(born: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Completed years of age on each date (a birthday counts on the day)."""
    b, o = born.astype("datetime64[D]"), on.astype("datetime64[D]")
    month = [x.astype("datetime64[M]").astype(int) % 12 for x in (b, o)]
    day = [(x - x.astype("datetime64[M]")).astype(int) for x in (b, o)]
    before_birthday = (month[1] < month[0]) | ((month[1] == month[0]) & (day[1] < day[0]))
    return o.astype("datetime64[Y]").astype(int) - b.astype("datetime64[Y]").astype(int) - before_birthday


def leave(rng: np.random.Generator, victims: pd.DataFrame, records: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """Which of one transit country's recorded victims move on: one row per human, with their
    human_id, destination, arrival date, personal attributes (PERSONAL) and identity (the
    columns of `people`, indexed by person_key)."""
    p = params().onward
    last = records.groupby("victim_key", sort=True).reference_date.max()
    go = rng.random(len(last)) < p.share
    n = int(go.sum())
    destination = choose(rng, p.destinations, n)
    gap = (1 + np.floor(rng.exponential(p.gap_days, n))).astype("timedelta64[D]")
    arrival = last.to_numpy()[go].astype("datetime64[D]") + gap
    keys = last.index.to_numpy()[go]
    who = victims.set_index("person_key").loc[keys]
    humans = pd.DataFrame(
        {
            "human_id": who.human_id.to_numpy(),
            "destination": destination,
            "arrival": arrival,
            **{c: who[c].to_numpy() for c in PERSONAL},
        }
    )
    humans = pd.concat([humans, people.loc[keys].reset_index(drop=True)], axis=1)
    return humans[arrival <= period_end()].reset_index(drop=True)


def arrive(
    rng: np.random.Generator, victims: pd.DataFrame, seen: np.ndarray, people: pd.DataFrame, humans: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A destination's victims and identities (copies) with the arriving `humans` (rows of
    `leave`) in the places of some of its victims; `seen`: whether any source saw each victim."""
    victims, people = victims.reset_index(drop=True), people.copy()
    age = age_group_at(humans.birth_date.to_numpy(), humans.arrival.to_numpy())
    wanted = humans.assign(child=np.isin(age, CHILD))[MATCHED]
    places = victims.assign(child=victims.age_group.isin(CHILD))[MATCHED]
    open_place = seen & (victims.route_stage.to_numpy() != "origin")
    moving, taken = [np.empty(0, int)], [np.empty(0, int)]
    for key, group in wanted.groupby(MATCHED, sort=True):
        free = np.flatnonzero(open_place & (places == pd.Series(key, index=MATCHED)).all(axis=1).to_numpy())
        k = min(len(group), len(free))
        moving.append(group.index.to_numpy()[rng.permutation(len(group))[:k]])
        taken.append(rng.choice(free, k, replace=False))
    who, rows = np.concatenate(moving), np.concatenate(taken)
    h = humans.iloc[who]
    child = np.isin(age[who], CHILD)
    for column in PERSONAL:
        victims.loc[rows, column] = h[column].to_numpy()
    victims.loc[rows, "unaccompanied_child"] = h.unaccompanied_child.to_numpy() & child  # a child no longer, once 18
    victims.loc[rows, "age_group"] = age[who]
    victims.loc[rows, "entry_date"] = h.arrival.to_numpy()
    victims.loc[rows, "entry_period"] = period_names()[quarter_index(h.arrival.to_numpy(), periods()[0])]
    victims.loc[rows, "human_id"] = h.human_id.to_numpy()
    places_of = victims.person_key.to_numpy()[rows]
    for column in people.columns:
        people.loc[places_of, column] = h[column].to_numpy()
    return victims, people
