from django import forms

from returnsync.choices import System
from returnsync.models import Connection


class CsvUploadForm(forms.Form):
    connection = forms.ModelChoiceField(
        queryset=Connection.objects.filter(kind=System.ZIGZAG, is_enabled=True), empty_label=None,
        label="ZigZag connection")
    file = forms.FileField(label="Receipt/grading CSV")
