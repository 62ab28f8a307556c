import pytest

from tests import factories

ALL = [
    getattr(factories, name)
    for name in dir(factories)
    if name.endswith("Factory") and name != "UserFactory" and hasattr(getattr(factories, name), "_meta")
]


@pytest.mark.django_db
@pytest.mark.parametrize("factory_class", ALL, ids=lambda f: f.__name__)
def test_every_factory_saves_a_valid_row(factory_class):
    obj = factory_class()
    obj.full_clean()
    assert type(obj).objects.filter(pk=obj.pk).exists()
