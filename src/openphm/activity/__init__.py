"""Activity and cost per person: contacts, admissions, bed days and cost by setting in windows before each as_of."""
