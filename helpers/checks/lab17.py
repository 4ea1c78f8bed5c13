"""Lab 17 (ElastiCache Serverless): choosing it, predicting its ECPU bill, capping it."""

from __future__ import annotations

from typing import Any

from helpers.exercises.core import (
    Exercise,
    Wrong,
    expect_choices_per_item,
    expect_keys,
    expect_number,
    expect_type,
)
from helpers.runtime.i18n import N_, translator

_ = translator(__name__)
LAB = "17"


# --- q1: serverless or node-based ------------------------------------------------------------------------

WORKLOADS = {
    "new_app_sessions": "serverless",
    "steady_leaderboard": "node-based",
    "custom_parameters": "node-based",
}
REASONS = {
    "new_app_sessions": "unpredictable",
    "steady_leaderboard": "steady_and_large",
    "custom_parameters": "needs_parameter_groups",
}
REASON_CHOICES = ("unpredictable", "steady_and_large", "needs_parameter_groups", "cheaper_always", "faster_always")
WHY = {
    "new_app_sessions": N_("traffic nobody can forecast yet, with spikes: serverless follows it (in seconds, "
                           "without capacity planning) and bills what is used"),
    "steady_leaderboard": N_("a large, steady, predictable load: nodes sized once (and reserved) cost a fraction "
                             "of the same load in ECPUs"),
    "custom_parameters": N_("serverless has no parameter groups: a workload that must change engine parameters "
                            "(maxmemory-policy, notify-keyspace-events, ...) needs node-based clusters"),
}


def _check_choice(answer: Any) -> str:
    expect_keys(answer, WORKLOADS, _("your dict"))
    choices: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for item in WORKLOADS:
        value = answer[item]
        if not (isinstance(value, tuple) and len(value) == 2):
            raise Wrong(_("For {item!r}: give a pair (choice, reason), e.g. ('serverless', 'unpredictable'); got "
                          "{value!r}.", item=item, value=value))
        choices[item], reasons[item] = value
    expect_choices_per_item(choices, WORKLOADS, ("serverless", "node-based"),
                            explain=lambda item, got: _("{item!r}: not {got!r} — {why}.", item=item, got=got,
                                                         why=_(WHY[item])))
    for item, reason in reasons.items():
        expect_type(reason, str, _("the reason for {item!r}", item=item))
        if reason not in REASON_CHOICES:
            raise Wrong(_("For {item!r}: the reason must be one of {reasons}.",
                          item=item, reasons=', '.join(REASON_CHOICES)))
        if reason in ("cheaper_always", "faster_always"):
            why = _(WHY[item])
            raise Wrong(_("For {item!r}: neither option is always cheaper or faster; that is why the choice depends "
                          "on the workload. ", item=item) + why[0].upper() + why[1:] + ".")
        if reason != REASONS[item]:
            raise Wrong(_("For {item!r}: the right choice, but not for {reason!r}: {why}.",
                          item=item, reason=reason, why=_(WHY[item])))
    return _("Serverless for the unknown and the spiky; nodes for the large and steady, and where you "
             "need parameters.")


q1 = Exercise(
    lab=LAB, qid="q1", title="Serverless or node-based, and why",
    checker=_check_choice,
    hint_text="Ask of each workload: can I forecast it? Is it large and steady around the clock? Does it need "
              "something serverless does not offer?",
    solution_text="answer = {'new_app_sessions': ('serverless', 'unpredictable'),\n"
                  "          'steady_leaderboard': ('node-based', 'steady_and_large'),\n"
                  "          'custom_parameters': ('node-based', 'needs_parameter_groups')}",
    reference={k: (WORKLOADS[k], REASONS[k]) for k in WORKLOADS},
    wrong=[
        ({**{k: (WORKLOADS[k], REASONS[k]) for k in WORKLOADS}, "steady_leaderboard": ("serverless", "unpredictable")},
         "large, steady"),
        ({**{k: (WORKLOADS[k], REASONS[k]) for k in WORKLOADS}, "custom_parameters": ("serverless", "unpredictable")},
         "no parameter groups"),
        ({**{k: (WORKLOADS[k], REASONS[k]) for k in WORKLOADS},
          "new_app_sessions": ("serverless", "cheaper_always")}, "always cheaper"),
        ({**{k: (WORKLOADS[k], REASONS[k]) for k in WORKLOADS},
          "steady_leaderboard": ("node-based", "needs_parameter_groups")}, "the right choice, but not"),
        ({**{k: (WORKLOADS[k], REASONS[k]) for k in WORKLOADS},
          "new_app_sessions": ("node-based", "steady_and_large")}, "nobody can forecast"),
        ({**{k: (WORKLOADS[k], REASONS[k]) for k in WORKLOADS},
          "steady_leaderboard": ("node-based", "faster_always")}, "always cheaper or faster"),
        ({k: WORKLOADS[k] for k in WORKLOADS}, "pair"),
        ({"new_app_sessions": ("serverless", "unpredictable")}, "missing"),
    ],
)


# --- q2: predict the ECPUs of a workload -------------------------------------------------------------------

Q2_WORKLOAD = {"sets": 300, "gets": 1200, "value_kb": 4}


def q2_expected() -> float:
    """AWS's rule for simple commands: 1 ECPU per KB transferred, at least 1 a command."""
    w = Q2_WORKLOAD
    return (w["sets"] + w["gets"]) * max(1.0, w["value_kb"])


def _check_ecpus(answer: Any) -> str:
    got = expect_number(answer, _("your prediction (ECPUs)"))
    want = q2_expected()
    w = Q2_WORKLOAD
    if abs(got - want) <= 0.03 * want:
        return (_("{want:,.0f} ECPUs: {commands:,} commands x {value_kb} KB each. The metering adds a little for "
                  "the command's own bytes (key, protocol), which is why it reads slightly more.",
                  want=want, commands=w['sets'] + w['gets'], value_kb=w['value_kb']))
    if abs(got - (w["sets"] + w["gets"])) <= 0.03 * (w["sets"] + w["gets"]):
        raise Wrong(_("That is one ECPU per command: a GET or SET costs 1 ECPU per KB it transfers, and these "
                      "transfer {value_kb} KB each.", value_kb=w['value_kb']))
    if abs(got - w["sets"] * w["value_kb"]) <= 0.03 * w["sets"] * w["value_kb"]:
        raise Wrong(_("You counted the SETs only: a GET transfers the value too (in the reply), so it costs the "
                      "same."))
    if abs(got - w["gets"] * w["value_kb"]) <= 0.03 * w["gets"] * w["value_kb"]:
        raise Wrong(_("You counted the GETs only: a SET transfers the value too (in the request)."))
    raise Wrong(_("{got:,.0f} is not it: count the commands, and the KB each one transfers.", got=got))


q2 = Exercise(
    lab=LAB, qid="q2", title="Predict the ECPUs of a workload",
    checker=_check_ecpus,
    hint_text="Simple commands: 1 ECPU per KB transferred, minimum 1. How many commands, and how many KB each?",
    solution_text="answer = (300 + 1200) * 4   # 6,000 ECPUs",
    make_reference=q2_expected,
    wrong=[(1500, "one ECPU per command"), (300 * 4, "SETs only"), (1200 * 4, "GETs only"), (123, "not it"),
           ("6000", "number")],
)


# --- q3: cap the ECPU rate -----------------------------------------------------------------------------------

def _check_limits(answer: Any) -> str:
    expect_type(answer, dict, _("your CacheUsageLimits"))
    if "ECPUPerSecond" not in answer:
        if "DataStorage" in answer:
            raise Wrong(_("DataStorage caps the data stored (in GB); the question caps the request rate: "
                          "ECPUPerSecond."))
        raise Wrong(_("CacheUsageLimits has two members, DataStorage and ECPUPerSecond; the rate is ECPUPerSecond."))
    ecpu = answer["ECPUPerSecond"]
    if not isinstance(ecpu, dict):
        raise Wrong(_("ECPUPerSecond is itself a dict with Maximum and/or Minimum, e.g. {{'Maximum': 1000}}; got "
                      "{ecpu!r}.", ecpu=ecpu))
    if "Maximum" not in ecpu:
        if "Minimum" in ecpu:
            raise Wrong(_("Minimum is a floor (capacity kept ready, billed); a cap is the Maximum."))
        raise Wrong(_("Give ECPUPerSecond a Maximum."))
    mx = ecpu["Maximum"]
    if isinstance(mx, bool) or not isinstance(mx, int):
        raise Wrong(_("Maximum is an integer number of ECPUs per second; got {mx!r}.", mx=mx))
    if mx < 1000:
        raise Wrong(_("{mx} is below the lowest maximum AWS accepts (1,000 ECPU/s): modify-serverless-cache would "
                      "answer InvalidParameterValue.", mx=mx))
    if mx != 1000:
        raise Wrong(_("{mx:,} ECPU/s is a cap, but not the lowest one AWS accepts, which the question asks for.",
                      mx=mx))
    return _("ECPUPerSecond.Maximum = 1,000: above it, the cache throttles (ThrottledCmds counts it).")


q3 = Exercise(
    lab=LAB, qid="q3", title="Cap the cache's ECPU rate",
    checker=_check_limits,
    hint_text="CacheUsageLimits = {'ECPUPerSecond': {...}}; AWS accepts 1,000 to 15,000,000.",
    solution_text="answer = {'ECPUPerSecond': {'Maximum': 1000}}",
    reference={"ECPUPerSecond": {"Maximum": 1000}},
    also_right=[{"ECPUPerSecond": {"Maximum": 1000, "Minimum": 1000}}],
    wrong=[({"ECPUPerSecond": {"Minimum": 1000}}, "floor"), ({"ECPUPerSecond": {"Maximum": 500}}, "lowest maximum"),
           ({"DataStorage": {"Maximum": 1, "Unit": "GB"}}, "request rate"), ({"ECPUPerSecond": 1000}, "itself a dict"),
           ({"ECPUPerSecond": {"Maximum": 5000}}, "not the lowest"), ("1000", "CacheUsageLimits"),
           ({"ECPUPerSecond": {"Maximum": "1000"}}, "integer"), ({"ECPUPerSecond": {"Maximum": 0}}, "lowest maximum")],
)
