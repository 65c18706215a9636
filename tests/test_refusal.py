"""A model reply that declines, in any wording, is a refusal (agent/refusal.py)."""

import pytest

from agent.refusal import is_refusal


@pytest.mark.parametrize(
    "text",
    [
        "The documents do not say.",
        "The school uniform policy is not mentioned in the given passages.",
        "The passages don't mention coffee.",
        "There is no information about coffee in the documents.",
        "I cannot answer this from the passages.",
        "资料中没有提到。",
        "资料中没有提到咖啡与高血压的关系。",
        "文中未提及校服。",
        "根据资料，无法回答这个问题。",
    ],
)
def test_refusals(text):
    assert is_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "Adults may take up to 4,000 mg in 24 hours [1].",
        "网上购买的商品，自收到之日起七日内可以无理由退货 [1]。",
        "Do not take more than 8 tablets [1]. Do not drink alcohol [1].",
        "The landlord must return the deposit within 14 days [1]. Interest is not mentioned.",
    ],
)
def test_answers_are_not_refusals(text):
    assert not is_refusal(text)
