"""Trends: quarterly series per country, each with its interval band."""

from dashboards import theme

name, path, title = "trends", "/trends", "Trends"
filters = ("areas", "status")
intro = (
    "Persons recorded per quarter. The band is the 90 % interval; a hollow marker is a low-reliability "
    "value. Quarters count different persons (each in the quarter of their first record)."
)


def frame(data, state):
    return data.cells("counts", state["vintage"], ref_area=list(state["areas"]), status=state["status"])


def figure(f, state):
    if f.empty:
        return theme.empty("Choose at least one country")
    order = {a: i for i, a in enumerate(state["areas"])}
    f = f.sort_values(["ref_area", "time_period"], key=lambda s: s.map(order) if s.name == "ref_area" else s)
    status = "" if state["status"] == "_T" else f" ({theme.label('status', state['status']).lower()}s)"
    return theme.lines(f, "ref_area", f"Persons recorded per quarter{status}")


def extra(f, state, data):
    return None
