"""`python manage.py seed_demo`: demo customers and deals; running it again adds nothing twice.

Customers are keyed by email and deals by title, and existing rows are left as they are (an
opt-out or an edit made in the admin survives a re-run).
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from ecommerce.models import Customer, Deal

FIRST_NAMES = (
    "Ama", "Kofi", "Akosua", "Kwame", "Abena", "Yaw", "Efua", "Kojo", "Adwoa", "Kwabena",
    "Esi", "Kweku", "Afua", "Kwesi", "Yaa", "Fiifi", "Akua", "Nii", "Naa", "Selasi",
)  # fmt: skip
LAST_NAMES = (
    "Mensah", "Owusu", "Boateng", "Asante", "Osei", "Agyeman", "Appiah", "Addo", "Ofori",
    "Darko", "Amoah", "Quaye", "Tetteh", "Annan", "Sarpong", "Bonsu", "Antwi", "Acheampong",
)  # fmt: skip
# title, description, original price, deal price, days from now it starts, days it lasts
DEALS = (
    ("Kente stole", "Hand-woven in Bonwire, 2 m long.", "450.00", "315.00", -2, 14),
    ("Shea butter gift set", "Shea butter, black soap and oil.", "180.00", "99.00", -1, 10),
    ("Smartphone 128 GB", "6.5-inch screen, dual SIM.", "2500.00", "1999.00", -3, 7),
    ("Jollof spice kit", "Everything for a pot of party jollof.", "65.00", "52.00", -1, 21),
    ("Adinkra print shirt", "Cotton, sizes S to XXL.", "220.00", "132.00", 0, 14),
    ("Solar lantern", "Charges in a day, lights all night.", "150.00", "120.00", -5, 30),
    ("Wireless earbuds", "Last season's model: the deal has ended.", "400.00", "200.00", -30, 10),
    ("Blender 1.5 L", "Starts next week.", "600.00", "390.00", 7, 14),
)  # fmt: skip


class Command(BaseCommand):
    help = "Create demo customers (Ghanaian names, @example.com) and deals, without duplicates."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=25, help="how many customers")
        parser.add_argument("--no-deals", action="store_true", help="create customers only")

    @transaction.atomic
    def handle(self, *args: Any, customers: int, no_deals: bool, **options: Any) -> None:
        made = sum(self.customer_seed(i) for i in range(customers))
        self.stdout.write(f"customers: {made} created, {customers - made} already there")
        if not no_deals:
            made = sum(self.deal_seed(*deal) for deal in DEALS)
            self.stdout.write(f"deals: {made} created, {len(DEALS) - made} already there")

    def customer_seed(self, i: int) -> bool:
        first = FIRST_NAMES[i % len(FIRST_NAMES)]
        last = LAST_NAMES[(i * 7 + i // len(FIRST_NAMES)) % len(LAST_NAMES)]
        _, created = Customer.objects.get_or_create(
            email=f"{first}.{last}.{i + 1}@example.com".lower(),
            defaults={
                "first_name": first,
                "last_name": last,
                "phone": f"+23324{1000000 + i:07d}",
                # a few customers the best-deals email must skip
                "is_active": i % 10 != 9,
            },
        )
        return created

    def deal_seed(
        self, title: str, description: str, original: str, price: str, starts: int, days: int
    ) -> bool:
        starts_at = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(starts)
        _, created = Deal.objects.get_or_create(
            title=title,
            defaults={
                "description": description,
                "original_price": Decimal(original),
                "deal_price": Decimal(price),
                "currency": "GHS",
                "starts_at": starts_at,
                "ends_at": starts_at + timedelta(days),
            },
        )
        return created
